"""GradCache: in-batch negatives over batches larger than activation memory allows.

Gao et al., "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup" (RepL4NLP 2021).
The step is exact: the loss and parameter gradients equal those of one step on the whole batch.
"""

import contextlib

import torch

from sycl.models.tokenization import length_sorted_chunks
from sycl.training.module import RetrieverModule


class RandomState:
    """The CPU (and current CUDA device) RNG state, so a re-forward draws the same dropout masks."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    @contextlib.contextmanager
    def restored(self):
        devices = [self.device] if self.cuda is not None else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state(self.cuda, self.device)
            yield


class GradCacheRetrieverModule(RetrieverModule):
    """RetrieverModule whose training step embeds in chunks and caches the embeddings' gradients.

    1. Embed all queries and passages chunk by chunk without a graph (memory: one chunk's activations).
    2. Compute the loss on the full batch of embeddings (all-gathered across devices and masked as in
       ``RetrieverModule.score``) and its gradient with respect to every embedding.
    3. Re-embed each chunk with a graph, under the RNG state of step 1, and backpropagate the cached
       embedding gradient into the parameters.
    Optimisation is manual (Lightning's automatic loop allows one backward per step): gradient
    clipping is ``max_grad_norm`` here, and ``trainer.gradient_clip_val`` and
    ``trainer.accumulate_grad_batches`` must stay unset (a bigger ``data.batch_size`` replaces
    accumulation). fp32 and bf16; not fp16 with a loss scaler.
    """

    def __init__(self, *args, chunk_size: int = 32, max_grad_norm: float | None = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.automatic_optimization = False
        self.chunk_size, self.max_grad_norm = chunk_size, max_grad_norm

    @property
    def anchor_chunk_size(self) -> int:
        return self.chunk_size

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        optimizer, scheduler = self.optimizers(), self.lr_schedulers()
        optimizer.zero_grad()
        loss = self.cached_backward(batch)
        if self.max_grad_norm:
            self.clip_gradients(optimizer, gradient_clip_val=self.max_grad_norm, gradient_clip_algorithm="norm")
        optimizer.step()
        scheduler.step()
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["labels"].shape[0])
        self.log("train/lr", optimizer.param_groups[0]["lr"], batch_size=batch["labels"].shape[0])
        return loss

    def cached_backward(self, batch: dict) -> torch.Tensor:
        """Fill the parameters' .grad exactly as ``loss(self(batch)).backward()`` would; return the loss."""
        towers = [(self.encoder.encode_queries, batch["query"]), (self.encoder.encode_passages, batch["passages"])]
        cached = []  # per tower: (chunks, rng states, embeddings without graph)
        for encode, inputs in towers:
            chunks = length_sorted_chunks(inputs, self.chunk_size)
            states, parts = [], []
            with torch.no_grad():
                for _, chunk in chunks:
                    states.append(RandomState(self.device))
                    parts.append(encode(**chunk))
            embeddings = torch.empty(
                inputs["input_ids"].shape[0], parts[0].shape[1], dtype=parts[0].dtype, device=parts[0].device
            )
            for (rows, _), part in zip(chunks, parts, strict=True):
                embeddings[rows] = part
            cached.append((chunks, states, embeddings))

        queries = cached[0][2].detach().requires_grad_()
        passages = cached[1][2].detach().requires_grad_()
        # The same gathering, duplicate-negative mask and anchor term as the uncached forward.
        loss = self.objective(self.score(queries, passages, batch), batch)
        query_grad, passage_grad = torch.autograd.grad(loss, [queries, passages])

        backward_passes = [
            (encode, rows, chunk, state, grad[rows])
            for (encode, _), (chunks, states, _), grad in zip(towers, cached, [query_grad, passage_grad], strict=True)
            for (rows, chunk), state in zip(chunks, states, strict=True)
        ]
        for index, (encode, _, chunk, state, chunk_grad) in enumerate(backward_passes):
            last = index == len(backward_passes) - 1
            # Under DDP, gradients are all-reduced once, after the last chunk's backward.
            block_sync = getattr(self.trainer.strategy, "block_backward_sync", contextlib.nullcontext)
            sync = contextlib.nullcontext() if last else block_sync()
            with sync, state.restored():
                self.manual_backward(encode(**chunk), gradient=chunk_grad)
        return loss.detach()

"""The LightningModule: a dual encoder trained on graded groups with in-batch negatives."""

import time
from collections.abc import Mapping
from dataclasses import asdict

import torch
from lightning import LightningModule
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

from sycl.losses.base import duplicate_negative_mask
from sycl.models.dual_encoder import DualEncoder
from sycl.models.tokenization import length_sorted_chunks
from sycl.training.anchor import ScoreAnchor
from sycl.training.checkpoint_io import finish_last_batch
from sycl.training.schedule import linear_warmup_decay, total_optimizer_steps


class RetrieverModule(LightningModule):
    """Scores every query against every passage of the (all-gathered) batch and applies ``loss``.

    The loss is any module called as ``loss(scores [B, B*K], labels [B, K], column_mask [B, B*K] | None)``;
    Hydra builds it from ``conf/loss/<name>.yaml``, so a new loss never touches this class.
    ``mask_duplicate_negatives`` drops from a query's row the in-batch columns holding one of its own
    passages (same tokens), which would otherwise be both a graded passage and a label-0 negative of the
    query; False keeps them, as the reference does.

    ``anchor_weight`` > 0 adds ``anchor_weight * KL(base || trained)`` to the training loss: the divergence of
    each query's softmaxed in-batch scores (at ``anchor_temperature``) from those of a frozen copy of the
    encoder as training found it (``ScoreAnchor``). It limits how far a small training set can move the
    model away from what it ranked well before; 0 (the reference) trains on the loss alone.
    """

    def __init__(
        self,
        encoder: DualEncoder,
        loss: nn.Module,
        lr: float = 1e-5,
        weight_decay: float = 0.01,
        warmup_fraction: float = 0.05,
        gather_across_devices: bool = True,
        mask_duplicate_negatives: bool = True,
        passage_chunk_size: int | None = None,
        compile: bool | Mapping = False,
        anchor_weight: float = 0.0,
        anchor_temperature: float = 1.0,
    ):
        super().__init__()
        if anchor_weight < 0:
            raise ValueError(f"module.anchor_weight must be >= 0, got {anchor_weight}")
        self.save_hyperparameters(ignore=["encoder", "loss"])
        self.encoder = encoder
        self.loss = loss
        # Copied before Lightning loads any checkpoint into the encoder: a resumed run keeps the same anchor.
        self.anchor = ScoreAnchor(encoder, anchor_temperature) if anchor_weight > 0 else None
        # transformers 5 loads models in eval mode and Lightning keeps a module's mode: without this,
        # dropout would stay off during training.
        self.encoder.train()
        self._step_started = 0.0

    def configure_model(self) -> None:
        """With ``compile`` (True, or a dict of ``torch.compile`` options), compile each transformer tower.

        ``nn.Module.compile`` compiles in place, so parameter names, checkpoints and the exported folder stay
        as without it. Shapes vary from batch to batch (dynamic padding), hence ``dynamic=True`` by default.
        """
        if not self.hparams.compile:
            return
        options = {"dynamic": True, **(self.hparams.compile if isinstance(self.hparams.compile, Mapping) else {})}
        for tower in {id(t): t for t in (self.encoder.query_model, self.encoder.passage_tower)}.values():
            if not getattr(tower, "_sycl_compiled", False):  # configure_model runs again on fit after validate
                tower.compile(**options)
                tower._sycl_compiled = True

    def forward(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Returns scores [B, B*K], labels [B, K] and the loss's column_mask [B, B*K] (None without
        ``mask_duplicate_negatives``), B being the global batch when gathering across devices."""
        queries = self.encoder.encode_queries(**batch["query"])  # [b, H]
        passages = self.encode_passages(batch["passages"])  # [b*K, H]
        return self.score(queries, passages, batch)

    def score(
        self, queries: torch.Tensor, passages: torch.Tensor, batch: dict
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Scores this device's embeddings, queries [b, H] and passages [b*K, H], as ``forward`` does.

        Gathers across devices, then drops the rows that only pad a device's share of a validation
        batch (``batch["valid"]`` False) with their passages, so the loss sees exactly the global batch
        that one process would.
        """
        labels, valid, passage_ids = batch["labels"], batch["valid"], batch["passage_ids"]  # [b, K], [b], [b*K]
        if self.hparams.gather_across_devices and self.trainer.world_size > 1:
            queries, passages, labels, passage_ids = (self._gather(t) for t in (queries, passages, labels, passage_ids))
            valid = self._gather(valid.long()).bool()  # as integers: gloo cannot all-gather bool tensors
        if not valid.all():
            group_size = labels.shape[1]
            queries, labels = queries[valid], labels[valid]
            passages = passages.view(-1, group_size, passages.shape[1])[valid].flatten(0, 1)
            passage_ids = passage_ids.view(-1, group_size)[valid].flatten()
        column_mask = None
        if self.hparams.mask_duplicate_negatives:
            column_mask = duplicate_negative_mask(passage_ids, labels.shape[1])
        return queries @ passages.T, labels, column_mask

    def encode_passages(self, inputs: dict) -> torch.Tensor:
        """[b*K, H]. With ``passage_chunk_size``, passages are encoded in length-sorted chunks, each padded
        only to its own longest passage: less compute on padding, same embeddings and gradients."""
        chunk_size = self.hparams.passage_chunk_size
        if not chunk_size or chunk_size >= inputs["input_ids"].shape[0]:
            return self.encoder.encode_passages(**inputs)
        chunks = length_sorted_chunks(inputs, chunk_size)
        parts = [self.encoder.encode_passages(**chunk) for _, chunk in chunks]
        rows = torch.cat([rows for rows, _ in chunks])
        return torch.cat(parts)[rows.argsort()]

    def _gather(self, tensor: torch.Tensor) -> torch.Tensor:
        # sync_grads keeps the graph through the gather, so each device's passages get gradients from all queries.
        gathered = self.all_gather(tensor, sync_grads=tensor.requires_grad)  # [world, b, ...]
        return gathered.reshape(-1, *tensor.shape[1:])

    def on_train_batch_start(self, batch: dict, batch_idx: int) -> None:
        self._step_started = time.perf_counter()

    def on_fit_start(self) -> None:
        if self.anchor is not None:
            self.anchor.to(self.device)

    @property
    def anchor_chunk_size(self) -> int | None:
        """Inputs per forward of the anchor's base model (None: the whole batch at once)."""
        return self.hparams.passage_chunk_size

    def objective(self, scored: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None], batch: dict) -> torch.Tensor:
        """The training loss of ``scored`` = ``score(...)``'s (scores, labels, column_mask) of ``batch``: the
        loss, plus the anchor term when ``anchor_weight`` > 0 (logged as ``train/anchor_kl``)."""
        scores, labels, column_mask = scored
        loss = self.loss(scores, labels, column_mask)
        if self.anchor is None:
            return loss
        base_scores, _, _ = self.score(*self.anchor.embed(batch, self.anchor_chunk_size), batch)
        drift = self.anchor.divergence(scores, base_scores, column_mask)
        self.log("train/anchor_kl", drift, batch_size=labels.shape[0])
        return loss + self.hparams.anchor_weight * drift

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        scored = self(batch)
        loss = self.objective(scored, batch)
        labels = scored[1]
        self.log("train/loss", loss, prog_bar=True, batch_size=labels.shape[0])
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=labels.shape[0])
        return loss

    def on_train_batch_end(self, outputs, batch: dict, batch_idx: int) -> None:
        elapsed = time.perf_counter() - self._step_started
        queries = batch["labels"].shape[0] * self.trainer.world_size
        self.log("train/queries_per_sec", queries / max(elapsed, 1e-9), batch_size=batch["labels"].shape[0])

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        scores, labels, column_mask = self(batch)
        needed = getattr(self.loss, "min_queries", 1)
        if labels.shape[0] < needed:
            rank_zero_warn(
                f"validation batch {batch_idx} holds {labels.shape[0]} queries, the remainder of the validation set "
                f"after full batches of data.batch_size x trainer.devices={self.trainer.world_size} queries, but "
                f"{type(self.loss).__name__} needs at least {needed}: it is left out of val/loss. To include it, "
                f"choose data.batch_size and trainer.devices so that this remainder is 0 or at least {needed}."
            )
            # Logged with weight 0 rather than skipped: every device must make the same logging calls.
            self.log("val/loss", scores.new_zeros(()), batch_size=0, sync_dist=True)
            return None
        loss = self.loss(scores, labels, column_mask)
        self.log("val/loss", loss, batch_size=labels.shape[0], sync_dist=True)
        return loss

    def configure_optimizers(self):
        decay, no_decay = [], []
        for parameter in self.parameters():
            if parameter.requires_grad:
                # Biases and norm weights are conventionally left out of weight decay (as in BERT fine-tuning).
                (no_decay if parameter.ndim < 2 else decay).append(parameter)
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.hparams.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=self.hparams.lr,
            # One fused kernel over all parameters: for MiniLM's 22.6M parameters on 2 CPU cores the default
            # per-tensor loop takes 0.13 s per step, the fused one 0.02 s (fused exists for CPU and CUDA).
            fused=self.device.type in ("cpu", "cuda"),
        )
        scheduler = linear_warmup_decay(optimizer, total_optimizer_steps(self.trainer), self.hparams.warmup_fraction)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # What eval needs to rebuild the encoder from a .ckpt alone.
        checkpoint["sycl_encoder"] = {
            "name_or_path": self.encoder.name_or_path,
            "settings": asdict(self.encoder.settings),
            # dtype, attention, checkpointing and LoRA: the state dict's keys and dtypes depend on them.
            "tower_options": asdict(self.encoder.tower_options),
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # A step checkpoint written after an epoch's last batch would resume as if that epoch had ended, skipping its
        # validation (val/loss, val/ndcg@10) and so its place in model selection. Whether a validation follows is the
        # trainer's to say, so it is fixed here, on load, where the trainer is known; here rather than in a callback,
        # so that it holds whichever callbacks a run keeps. RetrieverModule.load_from_checkpoint has no trainer.
        if self._trainer is not None:
            finish_last_batch(checkpoint, self._trainer)

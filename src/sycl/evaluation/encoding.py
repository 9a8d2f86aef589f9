"""Batch encoding of many texts: length-sorted batches, per-batch padding, optional bf16, progress bar."""

import contextlib
from collections.abc import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from sycl.data.text_store import text_lengths
from sycl.models.dual_encoder import DualEncoder


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@torch.no_grad()
def encode_texts(
    encoder: DualEncoder,
    texts: Sequence[str],
    kind: str,
    batch_size: int = 64,
    bf16: bool = False,
    device: str | torch.device = "auto",
    progress: bool = True,
    allocate: Callable[[int, int], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Embed ``texts`` as queries or passages (``kind``). Returns [len(texts), H] on the CPU, in input order.

    Texts are sorted by length so each batch pads only to its own longest text; on long-tailed corpora
    this is most of the speed-up over fixed-order batching. ``texts`` may be a lazy sequence (a
    ``sycl.data.text_store.TextSlice``): only one batch of texts is read at a time. The result is written, batch
    by batch, into ``allocate(len(texts), H)`` when given (any float dtype, e.g. a memory-mapped float16 store;
    ``sycl.evaluation.store``), else into a new float32 tensor.
    """
    if kind not in ("query", "passage"):
        raise ValueError(f"kind must be 'query' or 'passage', got {kind!r}")
    device = resolve_device(device) if isinstance(device, str) else device
    was_training = encoder.training
    encoder.eval().to(device)
    tokenize = encoder.tokenization.queries if kind == "query" else encoder.tokenization.passages
    embed = encoder.encode_queries if kind == "query" else encoder.encode_passages
    # Longest first, ties in input order; an int64 array, not a list of Python ints (36 bytes a passage).
    order = np.argsort(-np.asarray(text_lengths(texts), dtype=np.int64), kind="stable")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    output: torch.Tensor | None = None
    desc = "encode queries" if kind == "query" else "encode passages"
    # One autocast context around all batches: autocast caches the bf16 copies of the weights until its
    # context exits, so the weights are cast once, not once per batch.
    with tqdm(total=len(texts), desc=desc, unit="text", disable=not progress) as bar, autocast:
        for start in range(0, len(order), batch_size):
            batch_indices = order[start : start + batch_size]
            batch = {k: v.to(device) for k, v in tokenize([texts[i] for i in batch_indices.tolist()]).items()}
            embeddings = embed(**batch).float().cpu()
            if output is None:
                output = (allocate or torch.empty)(len(texts), embeddings.shape[1])
            output[torch.from_numpy(batch_indices)] = embeddings.to(output.dtype)
            bar.update(len(batch_indices))
    encoder.train(was_training)
    return output if output is not None else torch.empty(0, 0)

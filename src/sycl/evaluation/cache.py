"""Corpus-embedding cache keyed by everything that determines the embeddings.

The reference keys its cache by input file only, so a second checkpoint silently reuses the first
one's embeddings. Here the key hashes the model weights (every tensor, both towers, LoRA adapters included,
with their rank and scaling), the encoder settings (pooling, normalisation, prefixes, max lengths, EOS,
padding side), the numeric precision, the storage dtype and the corpus file's bytes: change any of them and the
cache misses.
A corpus read from the Hugging Face Hub is keyed the same way, by the bytes of its cached file, so a file changed
upstream (an unpinned URI now at a new commit) never reuses the old file's embeddings; its URI and commit are
stored with the entry only to say where it came from.
"""

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

from sycl.evaluation.store import open_embeddings, stored_ids, write_entry
from sycl.models.dual_encoder import DualEncoder

log = logging.getLogger(__name__)


def model_fingerprint(encoder: DualEncoder) -> str:
    """Hash of all weights and settings: equal fingerprints mean equal embeddings.

    A LoRA tower's state dict holds its base and adapter weights; the adapters' scaling (lora_alpha / r) is not a
    weight, so their configs are hashed too.
    """
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    digest.update(json.dumps(asdict(encoder.settings), sort_keys=True).encode())
    adapters = encoder.adapter_descriptions()
    if any(adapters):
        digest.update(json.dumps(adapters, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def file_fingerprint(path: str | Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


class EmbeddingCache:
    """Corpus embeddings [N, H] with their ids, one ``sycl.evaluation.store`` folder per key under ``directory``.

    ``dtype``: how the embeddings are stored, ``float32`` (as computed) or ``float16`` (half the disk and page
    cache; scores then carry float16's rounding of each embedding, about 3 significant digits). Entries are
    written atomically: a killed run leaves no entry that looks complete.
    """

    def __init__(self, directory: str | Path, dtype: str = "float32"):
        self.directory = Path(directory)
        self.dtype = dtype

    def key(self, model_print: str, corpus_file: str | Path, bf16: bool) -> str:
        parts = f"{model_print}/{file_fingerprint(corpus_file)}/{'bf16' if bf16 else 'fp32'}/{self.dtype}"
        return hashlib.blake2b(parts.encode(), digest_size=16).hexdigest()

    def load(self, key: str, ids: list[str]) -> torch.Tensor | None:
        """The stored embeddings of ``ids`` (memory-mapped), None unless an entry holds exactly those ids."""
        folder = self.directory / key
        if stored_ids(folder) != ids:  # none, or the same file read differently (e.g. a filter): do not trust rows
            return None
        log.info("corpus embeddings loaded from cache %s", folder)
        return open_embeddings(folder)

    def write(
        self,
        key: str,
        ids: list[str],
        encode: Callable[[Callable[[int, int], torch.Tensor]], object],
        source: dict[str, str] | None = None,
    ) -> torch.Tensor:
        """Store what ``encode(allocate)`` writes for the passages ``ids`` and return it, memory-mapped.
        ``source`` ({"uri", "commit"} of a corpus read from the Hub) is kept in the entry's ``entry.json`` as
        ``corpus_source``, metadata that plays no part in the key."""
        return write_entry(self.directory / key, ids, self.dtype, encode, source)

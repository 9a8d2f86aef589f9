"""Corpus-embedding cache keyed by everything that determines the embeddings.

The reference keys its cache by input file only, so a second checkpoint silently reuses the first
one's embeddings. Here the key hashes the model weights (every tensor, both towers), the encoder
settings (pooling, normalisation, prefixes, max lengths), the numeric precision and the corpus
file's bytes: change any of them and the cache misses. A corpus read from the Hugging Face Hub is keyed the same
way, by the bytes of its cached file, so a file changed upstream (an unpinned URI now at a new commit) never
reuses the old file's embeddings; its URI and commit are stored with the entry only to say where it came from.
"""

import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path

import torch

from sycl.files import atomic_writer
from sycl.models.dual_encoder import DualEncoder

log = logging.getLogger(__name__)


def model_fingerprint(encoder: DualEncoder) -> str:
    """Hash of all weights and settings: equal fingerprints mean equal embeddings."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    digest.update(json.dumps(asdict(encoder.settings), sort_keys=True).encode())
    return digest.hexdigest()


def file_fingerprint(path: str | Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


class EmbeddingCache:
    """Stores [N, H] corpus embeddings with their ids under ``directory/<key>.pt``; writes are atomic."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    @staticmethod
    def key(model_print: str, corpus_file: str | Path, bf16: bool) -> str:
        parts = f"{model_print}/{file_fingerprint(corpus_file)}/{'bf16' if bf16 else 'fp32'}"
        return hashlib.blake2b(parts.encode(), digest_size=16).hexdigest()

    def load(self, key: str, ids: list[str]) -> torch.Tensor | None:
        path = self.directory / f"{key}.pt"
        if not path.is_file():
            return None
        stored = torch.load(path, weights_only=True)
        if stored["ids"] != ids:  # same file, different reading (e.g. a filter): do not trust the rows
            return None
        log.info("corpus embeddings loaded from cache %s", path)
        return stored["embeddings"]

    def save(self, key: str, ids: list[str], embeddings: torch.Tensor, source: dict[str, str] | None = None) -> None:
        """Store ``embeddings`` [N, H] of the passages ``ids``; ``source`` ({"uri", "commit"} of a corpus read from
        the Hub) is kept beside them as ``corpus_source``, metadata that plays no part in the key."""
        entry = {"ids": ids, "embeddings": embeddings} | ({"corpus_source": source} if source else {})
        with atomic_writer(self.directory / f"{key}.pt", "wb") as handle:  # readers never see a half file
            torch.save(entry, handle)

"""Streaming a corpus file (any layout the readers know) in chunks, so mining never holds the texts of a large corpus.

MS MARCO's corpus has 8.8M passages (about 3 GB of JSON); as a Python dict of texts it would take over
10 GB. The miners read it once, in order, and keep only what they need (BM25 token ids, or embeddings).
"""

from collections.abc import Iterator
from pathlib import Path

# The reader training and evaluation use, so a miner sees exactly the passage texts they see.
from sycl.data.beir_files import iter_corpus


def iter_corpus_chunks(path: str | Path, chunk_size: int) -> Iterator[tuple[list[str], list[str]]]:
    """Yield (ids, texts) lists of at most ``chunk_size`` passages each, in file order."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    ids: list[str] = []
    texts: list[str] = []
    for corpus_id, text in iter_corpus(path):
        ids.append(corpus_id)
        texts.append(text)
        if len(ids) == chunk_size:
            yield ids, texts
            ids, texts = [], []
    if ids:
        yield ids, texts

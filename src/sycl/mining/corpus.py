"""Streaming a BEIR corpus.jsonl passage by passage, so mining never holds the texts of a large corpus.

MS MARCO's corpus has 8.8M passages (about 3 GB of JSON); as a Python dict of texts it would take over
10 GB. The miners read it once, in order, and keep only what they need (BM25 token ids, or embeddings).
"""

from collections.abc import Iterator
from pathlib import Path

from sycl.data.beir_files import iter_jsonl, text_field


def iter_corpus(path: str | Path) -> Iterator[tuple[str, str]]:
    """Yield (corpus id, text) in file order; the title, if any, is prepended as "title. text".

    The text is built exactly as ``sycl.data.beir_files.read_corpus`` builds it, so a miner sees the
    passage the training run and the evaluation see. Malformed lines raise ``DataFormatError``.
    """
    path = Path(path)
    for line, record in iter_jsonl(path):
        corpus_id = text_field(path, line, record, "_id")
        text = text_field(path, line, record, "text")
        title = text_field(path, line, record, "title", allow_empty=True) if "title" in record else ""
        yield corpus_id, f"{title.strip()}. {text}" if title.strip() else text


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

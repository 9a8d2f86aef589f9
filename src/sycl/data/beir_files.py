"""Readers for the BEIR / MTEB layout: corpus.jsonl, queries.jsonl and qrels (.tsv or grouped .jsonl).

Every reader validates as it goes and raises ``DataFormatError`` naming file, line and field. An id (a
query, a passage, a qrels pair) may appear once per file: a repeat with other content is an error naming
both lines, an exact repeat is read once and counted in a warning.
"""

import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path

from sycl.data.errors import DataFormatError

log = logging.getLogger(__name__)
HASH_MASK = (1 << 64) - 1

Qrels = dict[str, dict[str, float]]
"""query id -> {corpus id: graded score}"""


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line of a JSON Lines file."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    with path.open(encoding="utf-8") as lines:
        for line_number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataFormatError(
                    path, f"not valid JSON ({error.msg} at column {error.colno})", line_number
                ) from None
            if not isinstance(record, dict):
                raise DataFormatError(path, "each line must be a JSON object", line_number)
            yield line_number, record


def text_field(path: Path, line: int, record: dict, field: str, allow_empty: bool = False) -> str:
    """The string value of ``record[field]``, with a clear error when it is missing, not text, or empty."""
    if field not in record:
        raise DataFormatError(path, "missing", line, field)
    value = record[field]
    if isinstance(value, int | float) and not isinstance(value, bool) and field == "_id":
        value = str(value)
    if not isinstance(value, str):
        raise DataFormatError(path, f"must be a string, got {type(value).__name__}", line, field)
    if not allow_empty and not value.strip():
        raise DataFormatError(path, "is empty", line, field)
    return value


class RepeatedIds:
    """The first line and a content hash of every id read from one file, to catch ids that repeat.

    A repeat with the same content is harmless (the record is read once) and counted; one with other
    content would silently replace the first, so it is a ``DataFormatError`` naming both lines and the
    ``field`` that differs. Each id costs one int (line and 64-bit hash packed together) besides the id
    string the reader keeps anyway: about 1 GB for MS MARCO's 8.8M passage ids, and no copy of any text.
    """

    def __init__(self, path: Path, kind: str, field: str, content: str | None = None):
        self.path, self.kind, self.field, self.content = path, kind, field, content or field
        self.seen: dict = {}
        self.exact_repeats = 0

    def is_new(self, key, line: int, content: str | float) -> bool:
        """True the first time ``key`` is read; False for an exact repeat; raises for a conflicting one."""
        # repr for numbers: hash(-1.0) == hash(-2.0) in Python, repr never collides.
        digest = hash(content if isinstance(content, str) else repr(content)) & HASH_MASK
        first = self.seen.get(key)
        if first is None:
            self.seen[key] = line << 64 | digest
            return True
        if first & HASH_MASK == digest:
            self.exact_repeats += 1
            return False
        raise DataFormatError(
            self.path,
            f"{self.kind} {key!r} was already read on line {first >> 64} with a different {self.content}; "
            f"each {self.kind} may appear once per file: delete the wrong one of the two lines",
            line,
            self.field,
        )

    def report(self) -> None:
        if self.exact_repeats:
            log.warning(
                "%s: %d %s repeated unchanged; read once",
                self.path,
                self.exact_repeats,
                self.kind + ("s" if self.exact_repeats > 1 else ""),
            )


def read_queries(path: str | Path, keep_ids: set[str] | None = None) -> dict[str, str]:
    """queries.jsonl -> {query id: text}; with ``keep_ids``, only those queries are kept (and checked for repeats)."""
    path = Path(path)
    repeats = RepeatedIds(path, "query id", "text")
    queries = {}
    for line, record in iter_jsonl(path):
        query_id = text_field(path, line, record, "_id")
        if keep_ids is not None and query_id not in keep_ids:
            continue
        text = text_field(path, line, record, "text")
        if repeats.is_new(query_id, line, text):
            queries[query_id] = text
    repeats.report()
    return queries


def read_corpus(path: str | Path, keep_ids: set[str] | None = None) -> dict[str, str]:
    """corpus.jsonl -> {corpus id: passage text}, the title (if any) prepended as "title. text".

    With ``keep_ids`` only those passages are held in memory, so a training run reads a large corpus
    in one streaming pass and keeps just the passages its qrels name.
    """
    return dict(iter_corpus(path, keep_ids))


def iter_corpus(path: str | Path, keep_ids: set[str] | None = None) -> Iterator[tuple[str, str]]:
    """Yield (corpus id, text) in file order, one passage at a time (MS MARCO's 8.8M texts never sit in
    memory together); with ``keep_ids``, only those passages. Malformed lines raise ``DataFormatError``;
    so does an id repeated with another title or text (see ``RepeatedIds``; with ``keep_ids`` only kept
    ids are checked, as only they can change a result)."""
    path = Path(path)
    repeats = RepeatedIds(path, "corpus id", "text", content="title or text")
    for line, record in iter_jsonl(path):
        corpus_id = text_field(path, line, record, "_id")
        if keep_ids is not None and corpus_id not in keep_ids:
            continue
        text = text_field(path, line, record, "text")
        title = text_field(path, line, record, "title", allow_empty=True) if "title" in record else ""
        passage = f"{title.strip()}. {text}" if title.strip() else text
        if repeats.is_new(corpus_id, line, passage):
            yield corpus_id, passage
    repeats.report()


def read_qrels(path: str | Path) -> Qrels:
    """Read graded relevance judgements into {query id: {corpus id: score}} (see ``iter_qrels``)."""
    qrels: Qrels = {}
    for _, query_id, corpus_id, score in iter_qrels(path):
        qrels.setdefault(query_id, {})[corpus_id] = score
    return qrels


def iter_qrels(path: str | Path) -> Iterator[tuple[int, str, str, float]]:
    """Yield (line, query id, corpus id, score) from a qrels file.

    ``.tsv``: a header line, then ``query-id <tab> corpus-id <tab> score`` (the BEIR layout).
    ``.jsonl``: one query per line, ``{"query-id": ..., "corpus-ids": [...], "scores": [...]}``, the
    grouped form that mined negatives are written in.
    A (query id, corpus id) pair is yielded once: repeated with the same score it is counted in a warning,
    with another score it is a ``DataFormatError`` naming both lines (see ``RepeatedIds``).
    """
    path = Path(path)
    repeats = RepeatedIds(path, "(query-id, corpus-id) pair", "scores" if path.suffix == ".jsonl" else "score")
    for line, query_id, corpus_id, score in iter_qrels_rows(path):
        if repeats.is_new((query_id, corpus_id), line, score):
            yield line, query_id, corpus_id, score
    repeats.report()


def iter_qrels_rows(path: Path) -> Iterator[tuple[int, str, str, float]]:
    """Every (line, query id, corpus id, score) row of a qrels file as written, repeats included."""
    if path.suffix == ".jsonl":
        for line, record in iter_jsonl(path):
            query_id = text_field(path, line, record, "query-id")
            corpus_ids, scores = record.get("corpus-ids"), record.get("scores")
            if not isinstance(corpus_ids, list):
                raise DataFormatError(path, "must be a list of corpus ids", line, "corpus-ids")
            if not isinstance(scores, list) or len(scores) != len(corpus_ids):
                raise DataFormatError(path, "must be a list of numbers as long as 'corpus-ids'", line, "scores")
            for corpus_id, score in zip(corpus_ids, scores, strict=True):
                yield line, query_id, str(corpus_id), parse_score(path, line, score, field="scores")
        return
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    with path.open(encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n\r").split("\t")
        if [h.strip() for h in header[:3]] != ["query-id", "corpus-id", "score"]:
            raise DataFormatError(path, "the first line must be the header 'query-id<TAB>corpus-id<TAB>score'", 1)
        for line_number, row in enumerate(handle, 2):
            if not row.strip():
                continue
            columns = row.rstrip("\n\r").split("\t")
            if len(columns) < 3:
                raise DataFormatError(path, f"expected 3 tab-separated columns, got {len(columns)}", line_number)
            query_id, corpus_id = columns[0].strip(), columns[1].strip()
            if not query_id or not corpus_id:
                raise DataFormatError(path, "is empty", line_number, "query-id" if not query_id else "corpus-id")
            yield line_number, query_id, corpus_id, parse_score(path, line_number, columns[2])


def parse_score(path: Path, line: int, value, field: str = "score") -> float:
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise DataFormatError(path, f"score must be a number, got {value!r}", line, field) from None
    if not math.isfinite(score):
        raise DataFormatError(path, f"score must be finite, got {value!r}", line, field)
    return score

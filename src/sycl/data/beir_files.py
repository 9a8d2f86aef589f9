"""Readers for corpus, queries and qrels files in every standard layout, chosen from the file itself.

Texts (a corpus or a queries file):

- JSON Lines (a ``.jsonl`` name, or a first line that starts with ``{``): the id under any common name
  (``ID_FIELDS``: BEIR's ``_id``, Pyserini's ``id``, ``docid``, ``qid``, ...), the text under ``text``
  (a corpus may use Pyserini's ``contents``, queries ``query``), a passage's optional ``title``. The first
  record names the fields for the whole file.
- TSV (MS MARCO's ``collection.tsv`` and ``queries.*.tsv``): ``id <TAB> text`` without a header; or a
  header line that names the columns (DPR's ``id <TAB> text <TAB> title``).

Qrels:

- Three columns, ``query-id <TAB> corpus-id <TAB> score``, with BEIR's header line or without one. Line 1
  is a header when its first column is a known name (``query-id``, ``qid``, ...) or its score is not a
  number; no other line is ever taken for one.
- Four columns, TREC's ``qid iter docid rel`` (NIST, Anserini, MS MARCO's ``qrels.*.tsv``), split on
  whitespace (on tabs when line 1 has one); ``iter`` is ignored and ``rel`` must be an integer.
- JSON Lines: one query per line with a list of corpus ids and a list of scores, in our form
  ``{"query-id", "corpus-ids", "scores"}`` or Trove's ``{"qid", "docid", "score"}``; or one pair per line
  (``{"query-id", "corpus-id", "score"}``, as MTEB publishes BEIR on the Hub).

Any of them may be gzipped (recognised by its first bytes; a ``.gz`` name that is not gzip is an error).
Every file is read streaming, in one pass. The number of columns or the fields of the first line decide
the layout, so that line must be well formed.

Every reader validates as it goes and raises ``DataFormatError`` naming file, line and field. With
``bad_rows="skip"`` a malformed row is skipped instead and the skips are counted in one warning per file.
An id (a query, a passage, a qrels pair) may appear once per file: a repeat with other content is an error
naming both lines, under ``skip`` too (which of the two lines is right is for a person to decide); an
exact repeat is read once and counted in a warning.
"""

import gzip
import itertools
import json
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from sycl.data.errors import DataFormatError

log = logging.getLogger(__name__)
HASH_MASK = (1 << 64) - 1
GZIP_MAGIC = b"\x1f\x8b"
BAD_ROW_POLICIES = ("error", "skip")
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
COLUMN_SUFFIXES = (".tsv", ".txt", ".trec", ".qrels")
ID_FIELDS = ("_id", "id", "qid", "query_id", "query-id", "docid", "doc_id", "corpus-id", "corpus_id", "pid")
TEXT_FIELDS = {"query": ("text", "query"), "passage": ("text", "contents")}
QRELS_QUERY_FIELDS = ("query-id", "qid", "query_id")
QRELS_CORPUS_FIELDS = ("corpus-ids", "corpus-id", "docid", "docids", "doc_id", "corpus_id", "pid")
QRELS_SCORE_FIELDS = ("scores", "score", "relevance", "label")

Qrels = dict[str, dict[str, float]]
"""query id -> {corpus id: graded score}"""
Line = tuple[int, str]
"""(line number, the line without its newline)"""


def iter_lines(path: str | Path) -> Iterator[Line]:
    """Yield (line number, line) for every line of a text file, plain or gzip, decoded as UTF-8 on the fly."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    with path.open("rb") as raw:
        gzipped = raw.read(2) == GZIP_MAGIC
    if path.suffix == ".gz" and not gzipped:
        raise DataFormatError(path, "is named .gz but is not gzip-compressed: gzip it, or drop .gz from its name")
    opener = gzip.open if gzipped else open
    line_number = 0
    try:
        # newline="\n": a stray carriage return inside a TSV passage must not split its line in two.
        with opener(path, "rt", encoding="utf-8", newline="\n") as handle:
            for line_number, line in enumerate(handle, 1):
                yield line_number, line.rstrip("\r\n")
    except UnicodeDecodeError as error:
        raise DataFormatError(
            path, f"is not UTF-8 text ({error.reason}), at or near this line", line_number + 1
        ) from None
    except (OSError, EOFError) as error:  # a corrupt gzip stream raises BadGzipFile, a truncated one EOFError
        raise DataFormatError(path, f"cannot be read past line {line_number}: {error}", line_number + 1) from None


def non_blank(lines: Iterator[Line]) -> Iterator[Line]:
    return (line for line in lines if line[1].strip())


def is_jsonl(path: Path, first_line: str) -> bool:
    """JSON Lines or columns by name (``.jsonl``, ``.tsv.gz``, ...); any other name by whether line 1 is an object."""
    suffix = Path(path.name.removesuffix(".gz")).suffix.lower()
    if suffix in JSONL_SUFFIXES or suffix in COLUMN_SUFFIXES:
        return suffix in JSONL_SUFFIXES
    return first_line.lstrip().startswith("{")


def parse_json(path: Path, line: int, text: str) -> dict:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataFormatError(path, f"not valid JSON ({error.msg} at column {error.colno})", line) from None
    if not isinstance(record, dict):
        raise DataFormatError(path, "each line must be a JSON object", line)
    return record


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line of a JSON Lines file (plain or gzip)."""
    path = Path(path)
    for line, text in non_blank(iter_lines(path)):
        yield line, parse_json(path, line, text)


def text_field(path: Path, line: int, record: dict, field: str, allow_empty: bool = False) -> str:
    """The string value of ``record[field]``, with a clear error when it is missing, not text, or empty."""
    if field not in record:
        raise DataFormatError(path, "missing", line, field)
    value = record[field]
    if not isinstance(value, str):
        raise DataFormatError(path, f"must be a string, got {type(value).__name__}", line, field)
    if not allow_empty and not value.strip():
        raise DataFormatError(path, "is empty", line, field)
    return value


def passage_part(path: Path, line: int, record: dict, field: str) -> str:
    """A passage's title or text, "" when null (data frame exports write a missing title so)."""
    return "" if record.get(field, "") is None else text_field(path, line, record, field, allow_empty=True)


def id_value(path: Path, line: int, value, field: str) -> str:
    """An id as a string: JSON strings as written, JSON integers in decimal; anything else is an error."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise DataFormatError(path, f"an id must be a string or an integer, got {type(value).__name__}", line, field)
    if not value.strip():
        raise DataFormatError(path, "is empty", line, field)
    return value


def first_present(path: Path, line: int, record: dict, names: tuple[str, ...], what: str) -> str:
    """The first of ``names`` that ``record`` has: how the first line of a file names ``what``."""
    for name in names:
        if name in record:
            return name
    raise DataFormatError(
        path, f"missing: no {what} field, expected one of {', '.join(map(repr, names))}", line, names[0]
    )


def parse_score(path: Path, line: int, value, field: str = "score") -> float:
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise DataFormatError(path, f"score must be a number, got {value!r}", line, field) from None
    if not math.isfinite(score):
        raise DataFormatError(path, f"score must be finite, got {value!r}", line, field)
    return score


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


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


def parsed_rows(path: Path, lines: Iterator[Line], parse: Callable, bad_rows: str) -> Iterator[tuple[int, object]]:
    """Yield (line, ``parse(line, text)``) for every line whose parse is not None.

    A line whose parse raises ``DataFormatError`` stops the read (``bad_rows="error"``) or is left out
    (``"skip"``); the skips are counted in one warning once the file is read.
    """
    if bad_rows not in BAD_ROW_POLICIES:
        raise ValueError(f"bad_rows={bad_rows!r} is not one of {BAD_ROW_POLICIES}")
    skipped, first_error = 0, None
    for line, text in lines:
        try:
            value = parse(line, text)
        except DataFormatError as error:
            if bad_rows == "error":
                raise
            skipped, first_error = skipped + 1, first_error or error
            continue
        if value is not None:
            yield line, value
    if skipped:
        log.warning("%s: skipped %d malformed rows (bad_rows=skip); the first: %s", path, skipped, first_error)


class JsonTexts:
    """The records of a JSON Lines corpus or queries file; the first one names the id and text fields."""

    def __init__(self, path: Path, kind: str, first: Line):
        record = parse_json(path, *first)
        self.path = path
        self.id_field = first_present(path, first[0], record, ID_FIELDS, "id")
        self.text_field = first_present(path, first[0], record, TEXT_FIELDS[kind], "text")

    def __call__(self, line: int, text: str) -> tuple[str, dict]:
        record = parse_json(self.path, line, text)
        if self.id_field not in record:
            raise DataFormatError(self.path, "missing (the file's first line keeps its id here)", line, self.id_field)
        return id_value(self.path, line, record[self.id_field], self.id_field), record


class TsvTexts:
    """The rows of a tab-separated corpus or queries file: ``id <TAB> text``, or the columns a header names."""

    def __init__(self, path: Path, kind: str, first: Line):
        self.path = path
        names = [name.strip().lower() for name in first[1].split("\t")]
        allowed = TEXT_FIELDS[kind] + (("title",) if kind == "passage" else ())
        text_columns = [name for name in names[1:] if name in TEXT_FIELDS[kind]]
        if names[0] in ID_FIELDS and text_columns and all(name in allowed for name in names[1:]):
            self.columns, self.header_line, self.text_field = names, first[0], text_columns[0]
        else:
            self.columns, self.header_line, self.text_field = ["id", "text"], None, "text"

    def __call__(self, line: int, text: str) -> tuple[str, dict] | None:
        if line == self.header_line:
            return None
        values = text.split("\t")
        if len(values) != len(self.columns):
            hint = "" if self.header_line else "; a header line naming the columns (e.g. id, text, title) reads others"
            raise DataFormatError(
                self.path,
                f"expected {len(self.columns)} tab-separated columns ({', '.join(self.columns)}), got {len(values)}"
                + hint,
                line,
            )
        record = dict(zip(self.columns, values, strict=True))
        return id_value(self.path, line, record[self.columns[0]].strip(), self.columns[0]), record


def iter_texts(
    path: str | Path,
    kind: str,
    keep_ids: set[str] | None = None,
    allow_empty: bool = True,
    bad_rows: str = "error",
) -> Iterator[tuple[str, str]]:
    """Yield (id, text) of a queries (``kind="query"``) or corpus (``"passage"``) file, in file order.

    A passage's title is prepended as "title. text"; a passage whose text is empty is its title (SciDocs
    has such passages); one with neither is "" under ``allow_empty`` (BEIR keeps FiQA's: they can be
    retrieved) and an error otherwise. An empty query is always an error. With ``keep_ids``, only those
    records are validated beyond their id and yielded.
    """
    path = Path(path)
    lines = non_blank(iter_lines(path))
    first = next(lines, None)
    if first is None:
        return
    parser = (JsonTexts if is_jsonl(path, first[1]) else TsvTexts)(path, kind, first)
    counts: Counter = Counter()

    def parse(line: int, text: str) -> tuple[str, str] | None:
        parsed = parser(line, text)
        if parsed is None or (keep_ids is not None and parsed[0] not in keep_ids):
            return None
        record_id, record = parsed
        if kind == "query":
            return record_id, text_field(path, line, record, parser.text_field)
        body = passage_part(path, line, record, parser.text_field)
        title = passage_part(path, line, record, "title").strip() if "title" in record else ""
        if body.strip():
            return record_id, f"{title}. {body}" if title else body
        if title:
            counts["title_only"] += 1
            return record_id, title
        if not allow_empty:
            raise DataFormatError(path, "is empty, and the passage has no title either", line, parser.text_field)
        counts["empty"] += 1
        return record_id, ""

    content = "title or text" if kind == "passage" else None
    repeats = RepeatedIds(path, "corpus id" if kind == "passage" else "query id", parser.text_field, content)
    for line, (record_id, text) in parsed_rows(path, itertools.chain([first], lines), parse, bad_rows):
        if repeats.is_new(record_id, line, text):
            yield record_id, text
    repeats.report()
    if counts:
        log.warning(
            "%s: %d passages have only a title, which stands for their text; %d have neither and are empty passages",
            path,
            counts["title_only"],
            counts["empty"],
        )


def read_queries(path: str | Path, keep_ids: set[str] | None = None, bad_rows: str = "error") -> dict[str, str]:
    """A queries file -> {query id: text}; with ``keep_ids``, only those queries are kept (and checked)."""
    return dict(iter_texts(path, "query", keep_ids, bad_rows=bad_rows))


def read_corpus(
    path: str | Path, keep_ids: set[str] | None = None, allow_empty: bool = True, bad_rows: str = "error"
) -> dict[str, str]:
    """A corpus file -> {corpus id: passage text} (see ``iter_texts`` for titles and empty passages).

    With ``keep_ids`` only those passages are held in memory, so a training run reads a large corpus
    in one streaming pass and keeps just the passages its qrels name.
    """
    return dict(iter_corpus(path, keep_ids, allow_empty, bad_rows))


def iter_corpus(
    path: str | Path, keep_ids: set[str] | None = None, allow_empty: bool = True, bad_rows: str = "error"
) -> Iterator[tuple[str, str]]:
    """Yield (corpus id, text) in file order, one passage at a time (MS MARCO's 8.8M texts never sit in
    memory together); with ``keep_ids``, only those passages. Malformed lines raise ``DataFormatError``;
    so does an id repeated with another title or text (see ``RepeatedIds``; with ``keep_ids`` only kept
    ids are checked, as only they can change a result)."""
    return iter_texts(path, "passage", keep_ids, allow_empty, bad_rows)


class ColumnQrels:
    """Qrels lines of 3 columns (query-id, corpus-id, score) or 4 (TREC: query-id, iteration, corpus-id, rel)."""

    def __init__(self, path: Path, first: Line):
        self.path = path
        # Tab-separated files may hold ids with spaces; TREC files without a tab are split on any whitespace.
        self.separator = "\t" if "\t" in first[1] else None
        columns = [column.strip() for column in first[1].rstrip().split(self.separator)]
        if len(columns) not in (3, 4):
            raise DataFormatError(
                path,
                f"expected 3 columns (query-id <TAB> corpus-id <TAB> score) or 4 (TREC: query-id iteration corpus-id "
                f"relevance), got {len(columns)}; this line decides the file's layout",
                first[0],
            )
        self.trec = len(columns) == 4
        self.score_field = "relevance" if self.trec else "score"
        is_header = columns[0].lower() in QRELS_QUERY_FIELDS + ("query", "topic") or not is_number(columns[-1])
        self.header_line = first[0] if is_header else None

    def __call__(self, line: int, text: str) -> list[tuple[str, str, float]] | None:
        if line == self.header_line:
            return None
        columns = [column.strip() for column in text.rstrip().split(self.separator)]
        if len(columns) != (4 if self.trec else 3):
            layout = "TREC qrels: query-id iteration corpus-id relevance" if self.trec else "query-id, corpus-id, score"
            raise DataFormatError(
                self.path, f"expected {4 if self.trec else 3} columns ({layout}), got {len(columns)}", line
            )
        query_id, corpus_id, score = (columns[0], columns[2], columns[3]) if self.trec else columns
        for field, value in (("query-id", query_id), ("corpus-id", corpus_id)):
            if not value:
                raise DataFormatError(self.path, "is empty", line, field)
        if self.trec:
            try:
                return [(query_id, corpus_id, float(int(score)))]
            except ValueError:
                raise DataFormatError(
                    self.path, f"TREC relevance must be an integer, got {score!r}", line, self.score_field
                ) from None
        return [(query_id, corpus_id, parse_score(self.path, line, score))]


class JsonQrels:
    """Qrels objects, one query with lists of ids and scores per line (ours, Trove's) or one pair per line.

    The first line names the three fields for the file; a line may list several ids or give one.
    """

    def __init__(self, path: Path, first: Line):
        record = parse_json(path, *first)
        self.path = path
        self.query_field = first_present(path, first[0], record, QRELS_QUERY_FIELDS, "query id")
        self.corpus_field = first_present(path, first[0], record, QRELS_CORPUS_FIELDS, "corpus id")
        self.score_field = first_present(path, first[0], record, QRELS_SCORE_FIELDS, "score")

    def __call__(self, line: int, text: str) -> list[tuple[str, str, float]]:
        record = parse_json(self.path, line, text)
        for field in (self.query_field, self.corpus_field, self.score_field):
            if field not in record:
                raise DataFormatError(self.path, "missing (the file's first line has it)", line, field)
        query_id = id_value(self.path, line, record[self.query_field], self.query_field)
        corpus_ids, scores = record[self.corpus_field], record[self.score_field]
        if not isinstance(corpus_ids, list):  # one pair per line
            corpus_ids, scores = [corpus_ids], [scores]
        elif not isinstance(scores, list) or len(scores) != len(corpus_ids):
            got = f"{len(scores)} scores" if isinstance(scores, list) else type(scores).__name__
            raise DataFormatError(
                self.path,
                f"must be a list of numbers as long as {self.corpus_field!r} ({len(corpus_ids)} ids), got {got}",
                line,
                self.score_field,
            )
        return [
            (
                query_id,
                id_value(self.path, line, corpus_id, self.corpus_field),
                parse_score(self.path, line, score, self.score_field),
            )
            for corpus_id, score in zip(corpus_ids, scores, strict=True)
        ]


def read_qrels(path: str | Path, bad_rows: str = "error") -> Qrels:
    """Read graded relevance judgements into {query id: {corpus id: score}} (see ``iter_qrels``)."""
    qrels: Qrels = {}
    for _, query_id, corpus_id, score in iter_qrels(path, bad_rows):
        qrels.setdefault(query_id, {})[corpus_id] = score
    return qrels


def iter_qrels(path: str | Path, bad_rows: str = "error") -> Iterator[tuple[int, str, str, float]]:
    """Yield (line, query id, corpus id, score) from a qrels file in any layout of the module docstring.

    A (query id, corpus id) pair is yielded once: repeated with the same score it is counted in a warning,
    with another score it is a ``DataFormatError`` naming both lines (see ``RepeatedIds``).
    """
    path = Path(path)
    lines = non_blank(iter_lines(path))
    first = next(lines, None)
    if first is None:
        return
    parser = (JsonQrels if is_jsonl(path, first[1]) else ColumnQrels)(path, first)
    repeats = RepeatedIds(path, "(query-id, corpus-id) pair", parser.score_field)
    for line, pairs in parsed_rows(path, itertools.chain([first], lines), parser, bad_rows):
        for query_id, corpus_id, score in pairs:
            if repeats.is_new((query_id, corpus_id), line, score):
                yield line, query_id, corpus_id, score
    repeats.report()

"""Training sources (Trove-style declarative data) and their merge into one candidate pool per query.

A source names a corpus, a queries file and a qrels file, plus optional filters. Loading a list of
sources does, in order, for each source: keep pairs with ``min_score <= score < max_score``; relabel
every kept pair to ``score_transform`` if set. Then sources are merged per query (union of queries).

Merge rule for a passage that two sources give for the same query (the same corpus file and id):
``on_conflict="last"`` (default, as the reference) keeps the later source's label, ``"first"`` the
earlier one's, ``"max"`` the higher label. The passage then *belongs* to the winning source, and each
source's ``group_top_k`` / ``group_random_k`` picks among the passages it owns for that query, so the
number of candidates per query is fixed even when random picks are redrawn every epoch.

Files may be in any layout ``sycl.data.beir_files`` reads (BEIR, MS MARCO, TREC, Trove; gzipped or not).
Bad input stops loading with an error naming file, line and field (``bad_rows="error"``, the default). With
``bad_rows="skip"`` malformed rows are skipped and counted instead, and so are the qrels pairs whose query
or passage is then missing (or never was in the files); the log says how many, per file and per source.
A passage with neither title nor text is a bad row here: there is nothing to train on.
"""

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

from sycl import hub
from sycl.data.beir_files import BAD_ROW_POLICIES, iter_qrels, read_corpus, read_queries
from sycl.data.errors import DataFormatError

log = logging.getLogger(__name__)

CONFLICT_RULES = ("last", "first", "max")
PassageKey = tuple[int, str]
"""(index of the corpus file among the loaded sources' corpora, corpus id)"""


@dataclass
class SourceSpec:
    """One training source: a corpus, a queries and a qrels file, in any layout the readers know.

    Each file is a local path or an ``hf://`` URI (``sycl.hub``); ``fetched`` turns the URIs into cached files.
    """

    corpus: str
    queries: str
    qrels: str
    name: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    score_transform: float | None = None
    group_top_k: int | None = None
    group_random_k: int | None = None

    def __post_init__(self):
        if self.group_top_k is not None and self.group_random_k is not None:
            raise ValueError(f"source {self.label}: set group_top_k or group_random_k, not both")
        for key in ("group_top_k", "group_random_k"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ValueError(f"source {self.label}: {key} must be >= 1")

    @property
    def label(self) -> str:
        return self.name or self.qrels

    def fetched(self, local_only: bool = False) -> "SourceSpec":
        """This source with its ``hf://`` files fetched into the HF cache and named by their local paths.

        The label stays the one given (a URI rather than a cache path). Raises ``sycl.hub.HubFileUnavailable``.
        """
        return dataclasses.replace(
            self,
            name=self.label,
            **{key: str(hub.local_path(getattr(self, key), local_only)) for key in ("corpus", "queries", "qrels")},
        )

    def keeps(self, score: float) -> bool:
        return (self.min_score is None or score >= self.min_score) and (
            self.max_score is None or score < self.max_score
        )


@dataclass
class CandidatePool:
    """Every query's candidate passages after filtering, relabelling and merging.

    ``candidates[query_id][s]`` lists (passage key, label) owned by source s, best label first.
    """

    specs: list[SourceSpec]
    query_ids: list[str]
    query_texts: dict[str, str]
    passage_texts: dict[PassageKey, str]
    candidates: dict[str, list[list[tuple[PassageKey, float]]]] = field(default_factory=dict)

    def pool_size(self, query_id: str) -> int:
        """How many candidates a draw for this query yields (fixed: see the module docstring)."""
        size = 0
        for spec, owned in zip(self.specs, self.candidates[query_id], strict=True):
            k = spec.group_top_k or spec.group_random_k or len(owned)
            size += min(k, len(owned))
        return size


def load_sources(specs: list[SourceSpec], on_conflict: str = "last", bad_rows: str = "error") -> CandidatePool:
    """Read, filter, relabel and merge the sources. Raises DataFormatError on any bad input, or with
    ``bad_rows="skip"`` skips and counts bad rows (see the module docstring)."""
    if on_conflict not in CONFLICT_RULES:
        raise ValueError(f"data.on_conflict={on_conflict!r} is not one of {CONFLICT_RULES}")
    if bad_rows not in BAD_ROW_POLICIES:
        raise ValueError(f"data.bad_rows={bad_rows!r} is not one of {BAD_ROW_POLICIES}")
    if not specs:
        raise ValueError("data.sources is empty: give at least one source")
    corpus_index: dict[str, int] = {}
    merged: dict[str, dict[PassageKey, tuple[float, int]]] = {}
    query_texts: dict[str, str] = {}
    passage_texts: dict[PassageKey, str] = {}
    for source_index, spec in enumerate(specs):
        corpus_id_of = corpus_index.setdefault(str(Path(spec.corpus).resolve()), len(corpus_index))
        pairs, first_line = read_source_pairs(spec, bad_rows)
        pairs = read_source_texts(spec, pairs, first_line, corpus_id_of, query_texts, passage_texts, bad_rows)
        for query_id, judged in pairs.items():
            per_query = merged.setdefault(query_id, {})
            for corpus_id, label in judged.items():
                key = (corpus_id_of, corpus_id)
                if key in per_query and not wins(label, per_query[key][0], on_conflict):
                    continue
                per_query[key] = (label, source_index)
    pool = CandidatePool(specs, list(merged), query_texts, passage_texts)
    for query_id, per_query in merged.items():
        owned: list[list[tuple[PassageKey, float]]] = [[] for _ in specs]
        for key, (label, source_index) in per_query.items():
            owned[source_index].append((key, label))
        pool.candidates[query_id] = [sorted(items, key=lambda item: (-item[1], item[0])) for items in owned]
    log.info("loaded %d sources: %d queries, %d passages", len(specs), len(pool.query_ids), len(passage_texts))
    return pool


def wins(new_label: float, old_label: float, on_conflict: str) -> bool:
    return on_conflict == "last" or (on_conflict == "max" and new_label >= old_label)


def read_source_pairs(
    spec: SourceSpec, bad_rows: str = "error"
) -> tuple[dict[str, dict[str, float]], dict[tuple[str, str], int]]:
    """The source's kept, relabelled pairs, and the qrels line each query and passage first appears on."""
    path = Path(spec.qrels)
    pairs: dict[str, dict[str, float]] = {}
    first_line: dict[tuple[str, str], int] = {}
    for line, query_id, corpus_id, score in iter_qrels(path, bad_rows):
        if not spec.keeps(score):
            continue
        first_line.setdefault(("query-id", query_id), line)
        first_line.setdefault(("corpus-id", corpus_id), line)
        pairs.setdefault(query_id, {})[corpus_id] = (
            score if spec.score_transform is None else float(spec.score_transform)
        )
    if not pairs:
        log.warning("source %s keeps no pairs (check min_score/max_score)", spec.label)
    return pairs, first_line


def read_source_texts(
    spec, pairs, first_line, corpus_id_of, query_texts, passage_texts, bad_rows: str = "error"
) -> dict[str, dict[str, float]]:
    """Read the texts the source's pairs name; returns the pairs whose query and passage both have one.

    A pair naming an id the files lack fails on its qrels line, or under ``bad_rows="skip"`` is dropped
    and counted.
    """
    wanted_queries = set(pairs)
    wanted_passages = {corpus_id for judged in pairs.values() for corpus_id in judged}
    queries = read_queries(spec.queries, keep_ids=wanted_queries, bad_rows=bad_rows)
    corpus = read_corpus(spec.corpus, keep_ids=wanted_passages, allow_empty=False, bad_rows=bad_rows)
    for kind, wanted, found, where in (
        ("query-id", wanted_queries, queries, spec.queries),
        ("corpus-id", wanted_passages, corpus, spec.corpus),
    ):
        missing = sorted(wanted - found.keys(), key=lambda i: first_line[(kind, i)])
        if missing and bad_rows == "error":
            raise DataFormatError(
                spec.qrels,
                f"{missing[0]!r} is not in {where}"
                + (f" ({len(missing) - 1} more ids missing)" if len(missing) > 1 else "")
                + "; data.bad_rows=skip drops such pairs instead",
                first_line[(kind, missing[0])],
                kind,
            )
    for query_id, text in queries.items():
        if query_texts.setdefault(query_id, text) != text:
            raise DataFormatError(
                spec.queries, f"query {query_id!r} has a different text in an earlier source", field="text"
            )
    passage_texts.update({(corpus_id_of, corpus_id): text for corpus_id, text in corpus.items()})
    kept = {
        query_id: {corpus_id: label for corpus_id, label in judged.items() if corpus_id in corpus}
        for query_id, judged in pairs.items()
        if query_id in queries
    }
    kept = {query_id: judged for query_id, judged in kept.items() if judged}
    dropped = sum(map(len, pairs.values())) - sum(map(len, kept.values()))
    if dropped:
        log.warning(
            "source %s: dropped %d of its pairs, whose query or passage is missing from its files or was a "
            "skipped bad row (data.bad_rows=skip); %d queries are left",
            spec.label,
            dropped,
            len(kept),
        )
    return kept

"""Writing the generated passages as a BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.

Passage ids are ``<query id>-L<level>-s<sample>``: stable across runs and unambiguous (the suffix is
parsed from the right). Dedup: passages with the same normalised text are stored once, under the id of
the one journaled first; another query that got the same text points its qrels line at that id, and
a repeat within one query is dropped. Because "first journaled" never changes when a run resumes, the
corpus of a later run holds every id of an earlier one; writing corpus, then queries, then qrels,
each atomically, keeps every id the qrels name present at any moment.
"""

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sycl.files import write_lines_atomically
from sycl.generation.parsing import normalize_text, word_count
from sycl.generation.work import JournalPassage

PASSAGE_SUFFIX = re.compile(r"-L(\d+)-s\d+$")


def passage_id(query_id: str, level: int, sample: int) -> str:
    return f"{query_id}-L{level}-s{sample}"


def passage_level(doc_id: str) -> int | None:
    """The level in a ``passage_id``, read from the right (a query id may hold "-L"); None for another id."""
    match = PASSAGE_SUFFIX.search(doc_id)
    return int(match.group(1)) if match else None


@dataclass
class WrittenDataset:
    """What was written: counts for the report; ``words[level]`` lists the word count of each stored passage."""

    queries: int = 0
    passages: int = 0
    qrels_per_level: dict[int, int] = field(default_factory=dict)
    duplicates_within_query: int = 0
    duplicates_across_queries: int = 0
    words: dict[int, list[int]] = field(default_factory=dict)


def write_beir(
    output_dir: Path, queries: dict[str, str], passages: Iterable[JournalPassage], keep: set[str], split: str
) -> WrittenDataset:
    """Write the passages of the queries in ``keep`` (journal order) and those queries, in the BEIR layout."""
    written = WrittenDataset()
    doc_of_text: dict[bytes, str] = {}
    qrels: dict[str, dict[str, int]] = {}

    def corpus_lines() -> Iterator[str]:
        for passage in passages:
            if passage.query_id not in keep:
                continue
            digest = hashlib.blake2b(normalize_text(passage.text).encode(), digest_size=16).digest()
            doc_id = doc_of_text.get(digest)
            judged = qrels.setdefault(passage.query_id, {})
            if doc_id is None:
                doc_id = doc_of_text[digest] = passage_id(passage.query_id, passage.level, passage.sample)
                written.passages += 1
                written.words.setdefault(passage.level, []).append(word_count(passage.text))
                yield json.dumps({"_id": doc_id, "title": "", "text": passage.text}, ensure_ascii=False) + "\n"
            elif doc_id in judged:
                written.duplicates_within_query += 1
                continue
            else:
                written.duplicates_across_queries += 1
            judged[doc_id] = passage.level

    write_lines_atomically(output_dir / "corpus.jsonl", corpus_lines())
    kept_queries = {query_id: text for query_id, text in queries.items() if query_id in keep}
    write_queries_and_qrels(output_dir, kept_queries, qrels, split, written)
    return written


def write_queries_and_qrels(
    output_dir: Path, queries: dict[str, str], qrels: dict[str, dict[str, int]], split: str, written: WrittenDataset
) -> None:
    """Write ``queries`` (in their order) to queries.jsonl and their judgements to qrels/<split>.tsv, each
    atomically, after the corpus; count them into ``written``. A query's passages are listed by level, highest
    first, then by id."""
    written.queries = len(queries)
    write_lines_atomically(
        output_dir / "queries.jsonl",
        (json.dumps({"_id": q, "text": text}, ensure_ascii=False) + "\n" for q, text in queries.items()),
    )
    rows = ["query-id\tcorpus-id\tscore\n"]
    for query_id in queries:
        for doc_id, level in sorted(qrels.get(query_id, {}).items(), key=lambda item: (-item[1], item[0])):
            rows.append(f"{query_id}\t{doc_id}\t{level}\n")
            written.qrels_per_level[level] = written.qrels_per_level.get(level, 0) + 1
    write_lines_atomically(output_dir / "qrels" / f"{split}.tsv", rows)

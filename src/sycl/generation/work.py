"""Units of work (one request each) and which of them a journal already holds.

A unit asks for one sample of every level of a query (all-levels prompts) or for one level (per-level
prompts). A query is complete when the journal holds a passage for each of its
``samples_per_level x 4`` (sample, level) slots. Journal records whose query text differs from the
current queries file are ignored (the query was edited since), so their slots are asked again.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from sycl.generation.prompts import LEVELS


@dataclass(frozen=True)
class WorkUnit:
    """One request: passages at ``levels`` for sample ``sample`` of query ``query_id``."""

    query_id: str
    sample: int
    levels: tuple[int, ...]


class JournalPassage(NamedTuple):
    query_id: str
    sample: int
    level: int
    text: str


def journal_record(unit: WorkUnit, query: str, passages: dict[int, str], attempts: int, usage: dict) -> dict:
    """The journal line of a finished unit."""
    return {
        "query_id": unit.query_id,
        "query": query,
        "sample": unit.sample,
        "passages": {str(level): text for level, text in passages.items()},
        "attempts": attempts,
        **usage,
    }


def iter_journal_passages(records: Iterable[dict], queries: dict[str, str]) -> Iterator[JournalPassage]:
    """The passages of the journal for the current queries, oldest first; the first record of a slot wins."""
    seen: set[tuple[str, int, int]] = set()
    for record in records:
        query_id = record["query_id"]
        if queries.get(query_id) != record["query"]:
            continue
        for level, text in record["passages"].items():
            key = (query_id, record["sample"], int(level))
            if key not in seen:
                seen.add(key)
                yield JournalPassage(*key, text)


def filled_slots(passages: Iterable[JournalPassage]) -> dict[str, set[tuple[int, int]]]:
    """{query id: {(sample, level) the journal holds}}."""
    slots: dict[str, set[tuple[int, int]]] = {}
    for passage in passages:
        slots.setdefault(passage.query_id, set()).add((passage.sample, passage.level))
    return slots


def is_complete(slots: set[tuple[int, int]], samples_per_level: int) -> bool:
    return all((sample, level) in slots for sample in range(samples_per_level) for level in LEVELS)


def pending_units(
    queries: dict[str, str], slots: dict[str, set[tuple[int, int]]], samples_per_level: int, per_level: bool
) -> list[WorkUnit]:
    """The requests still to make, query by query in file order."""
    units = []
    for query_id in queries:
        have = slots.get(query_id, set())
        for sample in range(samples_per_level):
            missing = tuple(level for level in LEVELS if (sample, level) not in have)
            if per_level:
                units.extend(WorkUnit(query_id, sample, (level,)) for level in missing)
            elif missing:
                units.append(WorkUnit(query_id, sample, LEVELS))
    return units

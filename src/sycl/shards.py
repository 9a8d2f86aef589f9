"""Splitting a run's queries over array jobs: ``shard=i/n`` keeps the queries whose id hashes to i modulo n.

The split is by a stable hash of the query id (BLAKE2b; Python's ``hash()`` is salted per process), not by
position: a query's shard depends on its id alone, never on the order, filters or count of the other
queries, so re-running a shard after the queries file was reordered or extended keeps each journaled query
in its shard, and the union of the n shards is exactly the one-job run. Shard sizes are equal only on average
(binomial: 503k queries over 100 shards give 5030 +- about 70 each).
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

SYNTAX = "i/n with 0 <= i < n (e.g. shard=0/4, or shard=$SLURM_ARRAY_TASK_ID/4 in a SLURM array 0-3), or null"


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``; written and parsed as ``index/count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, query_id: str) -> bool:
        return shard_of(query_id, self.count) == self.index

    def select(self, query_ids: Iterable[str]) -> list[str]:
        """The ids this shard holds, in their given order."""
        return [query_id for query_id in query_ids if self.holds(query_id)]


def shard_of(query_id: str, count: int) -> int:
    """The shard (0 .. count-1) of a query id; the same in every process, Python version and machine."""
    digest = hashlib.blake2b(query_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def parse_shard(value) -> Shard | None:
    """``"i/n"`` as a ``Shard``; None (no sharding: the whole run) for None. ValueError naming the syntax otherwise."""
    if value is None:
        return None
    index, slash, count = str(value).strip().partition("/")
    if slash and index.strip().isdigit() and count.strip().isdigit():
        shard = Shard(int(index), int(count))
        if shard.index < shard.count:
            return shard
    raise ValueError(f"shard={value!r} must be {SYNTAX}")

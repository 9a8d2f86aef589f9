"""Drawing one training group per query from its candidate pool: seeded, multilevel or binary."""

import random
from dataclasses import dataclass

from sycl.data.sources import CandidatePool, PassageKey

SELECTIONS = ("random", "most_relevant")
SHORT_GROUP_POLICIES = ("repeat", "skip")
Candidate = tuple[PassageKey, float]


@dataclass
class GroupSampler:
    """Draws ``group_size`` (passage, label) pairs for a query, deterministically in (seed, epoch, query).

    mode ``multilevel``: any candidates, chosen at random or best label first; the group is returned
    best label first. mode ``binary``: one positive (label >= ``positive_threshold``) first, labelled 1,
    then ``group_size - 1`` negatives labelled 0, for InfoNCE.
    A pool smaller than the group is completed by cycling through it (``repeat``, as the reference
    does); under ``skip`` such queries never reach the sampler (see ``short_queries``).
    """

    pool: CandidatePool
    group_size: int
    mode: str = "multilevel"
    selection: str = "random"
    positive_threshold: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if self.mode not in ("multilevel", "binary"):
            raise ValueError(f"data.mode={self.mode!r} is not one of ('multilevel', 'binary')")
        if self.selection not in SELECTIONS:
            raise ValueError(f"data.selection={self.selection!r} is not one of {SELECTIONS}")
        if self.group_size < (2 if self.mode == "binary" else 1):
            raise ValueError(f"data.group_size={self.group_size} is too small for mode {self.mode}")

    def rng(self, epoch: int, query_id: str) -> random.Random:
        # Seeding with a string hashes it with SHA-512: stable across processes, unlike hash().
        return random.Random(f"{self.seed}/{epoch}/{query_id}")

    def draw_candidates(self, query_id: str, rng: random.Random) -> list[Candidate]:
        """Apply every source's per-query k; the result's length is ``pool.pool_size(query_id)``."""
        drawn: list[Candidate] = []
        for spec, owned in zip(self.pool.specs, self.pool.candidates[query_id], strict=True):
            if spec.group_top_k is not None:
                drawn += owned[: spec.group_top_k]
            elif spec.group_random_k is not None and spec.group_random_k < len(owned):
                drawn += rng.sample(owned, spec.group_random_k)
            else:
                drawn += owned
        return drawn

    def short_queries(self) -> list[str]:
        """Queries whose pool cannot fill a group without repetition."""
        return [q for q in self.pool.query_ids if self.available(q) < self.needed()]

    def queries_without_positive(self) -> list[str]:
        if self.mode != "binary":
            return []
        return [
            q
            for q in self.pool.query_ids
            if not any(label >= self.positive_threshold for owned in self.pool.candidates[q] for _, label in owned)
        ]

    def needed(self) -> int:
        return self.group_size - 1 if self.mode == "binary" else self.group_size

    def available(self, query_id: str) -> int:
        if self.mode == "multilevel":
            return self.pool.pool_size(query_id)
        # Binary negatives: an upper bound is enough to flag the clearly short pools.
        return sum(
            1 for owned in self.pool.candidates[query_id] for _, label in owned if label < self.positive_threshold
        )

    def group(self, query_id: str, epoch: int) -> list[Candidate]:
        """The query's group for this epoch: ``group_size`` (passage key, label) pairs."""
        rng = self.rng(epoch, query_id)
        drawn = self.draw_candidates(query_id, rng)
        if self.mode == "binary":
            return self._binary_group(drawn, rng)
        if self.selection == "random":
            chosen = rng.sample(drawn, min(self.group_size, len(drawn)))
        else:
            rng.shuffle(drawn)  # random order among equal labels, then a stable sort by label
            chosen = sorted(drawn, key=lambda c: -c[1])[: self.group_size]
        chosen.sort(key=lambda c: -c[1])
        return cycle_to(chosen, self.group_size)

    def _binary_group(self, drawn: list[Candidate], rng: random.Random) -> list[Candidate]:
        positives = [c for c in drawn if c[1] >= self.positive_threshold]
        negatives = [c for c in drawn if c[1] < self.positive_threshold]
        if not positives:
            raise ValueError("a binary group has no positive; GroupedQueryDataset checks this at setup")
        positive = rng.choice(positives)
        negatives = rng.sample(negatives, min(self.group_size - 1, len(negatives)))
        if not negatives:
            raise ValueError("a binary group has no negative to fill it")
        group = [(positive[0], 1.0)] + [(key, 0.0) for key, _ in cycle_to(negatives, self.group_size - 1)]
        return group


def cycle_to(items: list, length: int) -> list:
    """Repeat ``items`` in order until there are ``length`` of them."""
    return [items[i % len(items)] for i in range(length)]

"""A map-style dataset of one graded group per query, indexed by (query index, epoch)."""

import logging
import random

from torch.utils.data import Dataset

from sycl.data.groups import SHORT_GROUP_POLICIES, GroupSampler

log = logging.getLogger(__name__)


class GroupedQueryDataset(Dataset):
    """Item ``(i, epoch)`` is query i's group for that epoch: {"query": str, "passages": [K str], "labels": [K]}.

    The epoch travels with the index (see ``EpochBatchSampler``) so that DataLoader workers redraw
    random groups every epoch without sharing state. Checks for queries without positives (binary
    mode) and short pools happen here, before training starts.
    """

    def __init__(self, sampler: GroupSampler, short_group_policy: str = "repeat"):
        if short_group_policy not in SHORT_GROUP_POLICIES:
            raise ValueError(f"data.short_group_policy={short_group_policy!r} is not one of {SHORT_GROUP_POLICIES}")
        self.sampler = sampler
        without_positive = sampler.queries_without_positive()
        if without_positive:
            raise ValueError(
                f"{len(without_positive)} queries have no positive (label >= data.positive_threshold="
                f"{sampler.positive_threshold}) in binary mode, e.g. query-id {without_positive[0]!r}; "
                f"check the sources' min_score/score_transform or lower positive_threshold"
            )
        short = set(sampler.short_queries())
        self.query_ids = [q for q in sampler.pool.query_ids if not (short_group_policy == "skip" and q in short)]
        if short:
            action = "skipped" if short_group_policy == "skip" else "completed by repeating passages"
            log.warning(
                "%d of %d queries have fewer candidates than a group needs (%d): %s (data.short_group_policy=%s)",
                len(short),
                len(sampler.pool.query_ids),
                sampler.needed(),
                action,
                short_group_policy,
            )
        if not self.query_ids:
            raise ValueError("no query is left to train on: every pool is shorter than data.group_size")

    def keep_fraction(self, fraction: float, seed: int) -> None:
        """Keep a seeded random subset of the queries, in their original order."""
        count = max(1, round(fraction * len(self.query_ids)))
        kept = set(random.Random(f"{seed}/train_fraction").sample(self.query_ids, count))
        self.query_ids = [q for q in self.query_ids if q in kept]
        log.info("training on %d of the queries (data.train_fraction=%s)", len(self.query_ids), fraction)

    def lengths(self) -> list[int]:
        """Characters of each query plus the mean of its candidate passages: the key of length bucketing."""
        pool = self.sampler.pool
        result = []
        for query_id in self.query_ids:
            texts = [pool.passage_texts[key] for owned in pool.candidates[query_id] for key, _ in owned]
            result.append(len(pool.query_texts[query_id]) + sum(map(len, texts)) // max(1, len(texts)))
        return result

    def __len__(self) -> int:
        return len(self.query_ids)

    def __getitem__(self, index: int | tuple[int, int]) -> dict:
        index, epoch = index if isinstance(index, tuple) else (index, 0)
        query_id = self.query_ids[index]
        group = self.sampler.group(query_id, epoch)
        texts = self.sampler.pool.passage_texts
        return {
            "query_id": query_id,
            "query": self.sampler.pool.query_texts[query_id],
            "passages": [texts[key] for key, _ in group],
            "labels": [label for _, label in group],
        }

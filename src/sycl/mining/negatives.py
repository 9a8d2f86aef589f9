"""From a ranked list to negatives: drop the labelled positives, optionally sample, keep rank order."""

import random
from typing import NamedTuple

Hit = tuple[str, float]
"""(corpus id, retrieval score) of one ranked passage"""


class Negative(NamedTuple):
    """A mined negative: its corpus id, the miner's score and its 1-based rank in the full ranking."""

    corpus_id: str
    score: float
    rank: int


def select_negatives(
    ranked: list[Hit], positives: set[str], count: int | None = None, rng: random.Random | None = None
) -> list[Negative]:
    """The hits of ``ranked`` (best first) that are not labelled positives, in rank order.

    ``count``: keep all (None) or a uniform random sample of that many, drawn with ``rng``. A uniform
    sample of the top-k keeps the reference's "random negatives from BM25 top-1000" distribution while
    bounding the file and the training pool (a later random pick of 2 from the sample is a random pick
    of 2 from the top-k). A corpus id seen twice (a corpus with a duplicated id) is kept once, at its
    best rank. Ranks count the positives too, so they are the ranks of the full retrieval.
    """
    if count is not None and count < 1:
        raise ValueError(f"negatives_per_query must be >= 1 or null, got {count}")
    seen: set[str] = set()
    candidates: list[Negative] = []
    for rank, (corpus_id, score) in enumerate(ranked, 1):
        if corpus_id in positives or corpus_id in seen:
            continue
        seen.add(corpus_id)
        candidates.append(Negative(corpus_id, score, rank))
    if count is None or len(candidates) <= count:
        return candidates
    if rng is None:
        raise ValueError("sampling negatives needs a seeded rng")
    return sorted(rng.sample(candidates, count), key=lambda negative: negative.rank)

"""Profile each relevance level of the demo's LLM-written lists and of Cranfield's human judgements.

Demo training helps on the demo's test set but not on Cranfield; perhaps the LLM's levels differ by cues a model
can learn (level 3 restating the query, level 0 sharing its words) rather than as judged passages differ. Per
level, ``python -m sycl.experiments.level_profile`` prints: length in words; query-term overlap (share of the
query's distinct lower-cased non-stopwords of 3+ letters found in the passage); eval.py's BM25 (mid-rank in the
whole corpus, score over the query's best); the base all-MiniLM-L6-v2 cosine; per query, how often the top level
beats this one (BM25, cosine) and the lowest judged level has more overlap than this one. Cranfield judges only
relevant pairs, so 5 seeded random unjudged passages per query stand in for a "not judged" level.
"""

import random
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from functools import partial

import numpy as np
from bm25s.stopwords import STOPWORDS_EN

from sycl.config import bundled_minilm_path, repo_root
from sycl.evaluation.datasets import DatasetSpec, RetrievalSplit, load_split
from sycl.evaluation.encoding import encode_texts
from sycl.evaluation.lexical import BM25Retriever
from sycl.models.dual_encoder import DualEncoder

# (name, folder, qrels split, sample unjudged passages as a pseudo level)
COLLECTIONS = (
    ("demo synthetic (train)", "data/demo/synthetic", "train", False),
    ("demo test", "data/demo/test", "test", False),
    ("cranfield", "data/cranfield", "all", True),
)
UNJUDGED, UNJUDGED_PER_QUERY, SEED = -1, 5, 0
# Lucene's 33 English stopwords plus the question words that open most queries.
STOPWORDS = frozenset(STOPWORDS_EN) | {"what", "which", "who", "how", "why", "when", "where", "does", "can", "has"}
HEADER = (
    "level | pairs | words mean | words median | query-term overlap | BM25 rank | BM25 / query max | MiniLM cosine"
    " | top beats it, BM25 | top beats it, cosine | lowest judged has more overlap"
)


@dataclass(frozen=True)
class Pair:
    """One (query, passage) at one level, with its measures."""

    query_id: str
    level: int
    words: int
    overlap: float
    bm25_rank: float
    bm25_share: float
    bm25: float
    cosine: float


def terms(text: str) -> set[str]:
    """Distinct lower-cased words of 3+ characters that are not stopwords (no stemming)."""
    return {word for word in re.findall(r"\w+", text.lower()) if len(word) >= 3 and word not in STOPWORDS}


def judged_and_sampled(split: RetrievalSplit, sample_unjudged: bool) -> list[tuple[str, str, int]]:
    """(query id, corpus id, level) for every judged pair, plus seeded unjudged passages as level UNJUDGED."""
    rng, corpus_ids = random.Random(SEED), list(split.corpus)
    pairs = []
    for query_id in split.queries:
        judged = split.qrels[query_id]
        pairs += [(query_id, corpus_id, level) for corpus_id, level in judged.items() if corpus_id in split.corpus]
        if sample_unjudged:
            unjudged = [corpus_id for corpus_id in corpus_ids if corpus_id not in judged]
            pairs += [(query_id, corpus_id, UNJUDGED) for corpus_id in rng.sample(unjudged, UNJUDGED_PER_QUERY)]
    return pairs


def cosines(encoder: DualEncoder, split: RetrievalSplit, triples: list[tuple[str, str, int]]) -> list[float]:
    """The base model's query-passage cosine of every (query id, corpus id, level) of ``triples``."""
    query_ids, passage_ids = (sorted({triple[i] for triple in triples}) for i in (0, 1))
    encode = partial(encode_texts, encoder, batch_size=64, device="cpu", progress=False)
    queries = dict(zip(query_ids, encode([split.queries[q] for q in query_ids], "query"), strict=True))
    passages = dict(zip(passage_ids, encode([split.corpus[p] for p in passage_ids], "passage"), strict=True))
    return [float(queries[q] @ passages[p]) for q, p, _ in triples]


def profile(split: RetrievalSplit, encoder: DualEncoder, sample_unjudged: bool) -> list[Pair]:
    """Measure every pair of ``judged_and_sampled``: length, overlap, BM25 over the whole corpus, MiniLM cosine."""
    triples = judged_and_sampled(split, sample_unjudged)
    miner = BM25Retriever(progress=False).miner  # eval.py's ranker=bm25 defaults
    index, corpus_ids = miner.index(split.corpus_file)
    position = {corpus_id: i for i, corpus_id in enumerate(corpus_ids)}
    tokens = dict(zip(split.queries, miner.tokenize(list(split.queries.values()), return_ids=False), strict=True))
    bm25 = {query_id: index.get_scores(terms_) for query_id, terms_ in tokens.items()}  # [N], corpus file order
    pairs = []
    for (query_id, corpus_id, level), cosine in zip(triples, cosines(encoder, split, triples), strict=True):
        scores, text, query_terms = bm25[query_id], split.corpus[corpus_id], terms(split.queries[query_id])
        score = scores[position[corpus_id]]
        overlap = len(query_terms & terms(text)) / len(query_terms) if query_terms else float("nan")
        rank = 1 + (scores > score).sum() + ((scores == score).sum() - 1) / 2  # ties share their mid-rank
        share = score / scores.max() if scores.max() > 0 else 0.0
        pairs.append(Pair(query_id, level, len(text.split()), overlap, rank, share, score, cosine))
    return pairs


def at_level(pairs: list[Pair], level: int | None) -> list[Pair]:
    """A query's pairs at ``level``; None: at the query's lowest judged level."""
    if level is None:
        level = min(pair.level for pair in pairs if pair.level != UNJUDGED)
    return [pair for pair in pairs if pair.level == level]


def win_rate(by_query: dict[str, list[Pair]], measure: str, high: int | None, low: int | None) -> float:
    """Mean over queries of the share of (``high``, ``low`` level) passage pairs where high's ``measure`` is larger.

    Queries lacking either level, or where both are the same level, are skipped. With one passage per level
    (the demo) this is a fraction of queries.
    """
    rates = []
    for pairs in by_query.values():
        highs, lows = at_level(pairs, high), at_level(pairs, low)
        if highs and lows and highs[0].level != lows[0].level:
            rates.append(np.mean([getattr(a, measure) > getattr(b, measure) for a in highs for b in lows]))
    return float(np.mean(rates)) if rates else float("nan")


def mean(rows: list[Pair], measure: str) -> float:
    """The mean of ``measure`` over ``rows``, ignoring NaN (a query without content words has no overlap)."""
    return float(np.nanmean([getattr(row, measure) for row in rows]))


def table(name: str, split: RetrievalSplit, pairs: list[Pair]) -> str:
    """A markdown table, one row per level (best first), then the top level against each query's lowest judged."""
    by_query, by_level = defaultdict(list), defaultdict(list)
    for pair in pairs:
        by_query[pair.query_id].append(pair)
        by_level[pair.level].append(pair)
    top = max(by_level)
    lines = [f"### {name}: {len(by_query)} queries, corpus of {len(split.corpus)}", "", f"| {HEADER} |"]
    lines.append("|" + "---|" * (HEADER.count("|") + 1))
    for level in sorted(by_level, reverse=True):
        rows = by_level[level]
        rates = [win_rate(by_query, m, top, level) for m in ("bm25", "cosine")]
        rates.append(win_rate(by_query, "overlap", None, level))
        cells = [
            "unjudged" if level == UNJUDGED else str(level),
            str(len(rows)),
            f"{mean(rows, 'words'):.1f}",
            f"{np.median([row.words for row in rows]):.0f}",
            f"{mean(rows, 'overlap'):.2f}",
            f"{mean(rows, 'bm25_rank'):.1f}",
            f"{mean(rows, 'bm25_share'):.2f}",
            f"{mean(rows, 'cosine'):.2f}",
            *("-" if np.isnan(rate) else f"{rate:.2f}" for rate in rates),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    beats = [win_rate(by_query, m, top, None) for m in ("bm25", "cosine")]
    lines += ["", f"Level {top} above the query's lowest judged level: BM25 {beats[0]:.2f}, cosine {beats[1]:.2f}."]
    return "\n".join(lines)


def main() -> None:
    started = time.perf_counter()
    encoder = DualEncoder.from_pretrained(
        bundled_minilm_path(), pooling="mean", normalize=True, query_max_length=64, passage_max_length=128
    )
    for name, folder, split_name, sample_unjudged in COLLECTIONS:
        split = load_split(DatasetSpec(f"{repo_root()}/{folder}", split_name), beir_dir="data", download=False)
        print(table(name, split, profile(split, encoder, sample_unjudged)), end="\n\n")
    print(f"runtime {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

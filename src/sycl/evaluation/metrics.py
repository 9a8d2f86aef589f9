"""Graded retrieval metrics through beir's EvaluateRetrieval (pytrec_eval underneath)."""

import logging

from beir.retrieval.evaluation import EvaluateRetrieval

METRICS = (
    "NDCG@1",
    "NDCG@3",
    "NDCG@5",
    "NDCG@10",
    "NDCG@100",
    "MAP@100",
    "Recall@10",
    "Recall@100",
    "Recall@1000",
    "P@10",
    "MRR@10",
)
CUTOFFS = [1, 3, 5, 10, 100, 1000]

Run = dict[str, dict[str, float]]
"""query id -> {corpus id: score} for the retrieved passages"""


def drop_self_hits(run: Run) -> Run:
    """Remove a query's own id from its results (ArguAna, Quora: queries are also corpus documents)."""
    return {query_id: {d: s for d, s in hits.items() if d != query_id} for query_id, hits in run.items()}


def compute_metrics(qrels: dict[str, dict[str, int]], run: Run) -> dict[str, float]:
    """The metrics in METRICS, averaged over queries, with the names used in results.json.

    Binary metrics (MAP, Recall, P, MRR) count every label >= 1 as relevant (pytrec_eval's default),
    NDCG uses the grades. Self-hits are not touched here: see ``drop_self_hits``.
    """
    logging.disable(logging.INFO)  # beir logs every metric of every call at INFO on the root logger
    try:
        ndcg, mean_ap, recall, precision = EvaluateRetrieval.evaluate(qrels, run, CUTOFFS, ignore_identical_ids=False)
        mrr = EvaluateRetrieval.evaluate_custom(qrels, run, [10], metric="mrr")
    finally:
        logging.disable(logging.NOTSET)
    every = {**ndcg, **mean_ap, **recall, **precision, **mrr}
    return {name: float(every[name]) for name in METRICS}

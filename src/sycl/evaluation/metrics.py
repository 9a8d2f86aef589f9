"""Graded retrieval metrics from pytrec_eval (trec_eval), every one computed on the same ranking.

trec_eval ranks a query's hits by score, descending, and breaks exact ties by corpus id, descending
(its qsort compares ``strcmp(docno2, docno1)``). ``trec_order`` is that ordering; the evaluator cuts
its top-k with it, the run file lists ranks in it, and MRR@10 is trec_eval's ``recip_rank`` on the run
cut to its top 10 in it. So pytrec_eval on the written run file gives exactly these numbers.
"""

import math

import pytrec_eval

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
# results.json name -> trec_eval measure (BEIR's definitions: MAP@100 is map_cut_100, not map).
TREC_MEASURES = {
    "NDCG@1": "ndcg_cut_1",
    "NDCG@3": "ndcg_cut_3",
    "NDCG@5": "ndcg_cut_5",
    "NDCG@10": "ndcg_cut_10",
    "NDCG@100": "ndcg_cut_100",
    "MAP@100": "map_cut_100",
    "Recall@10": "recall_10",
    "Recall@100": "recall_100",
    "Recall@1000": "recall_1000",
    "P@10": "P_10",
}
MRR_DEPTH = 10

Run = dict[str, dict[str, float]]
"""query id -> {corpus id: score} for the retrieved passages"""


def trec_order(hits: dict[str, float]) -> list[tuple[str, float]]:
    """(corpus id, score) pairs best first, as trec_eval ranks them: score, then corpus id, both descending.

    Python compares str by code point, which for UTF-8 text is the byte order strcmp uses.
    """
    return sorted(hits.items(), key=lambda hit: (hit[1], hit[0]), reverse=True)


def top_hits(run: Run, k: int) -> Run:
    """Each query's first ``k`` hits in ``trec_order``, kept in that order."""
    return {query_id: dict(trec_order(hits)[:k]) for query_id, hits in run.items()}


def per_query_metrics(qrels: dict[str, dict[str, int]], run: Run) -> dict[str, dict[str, float]]:
    """{query id: {metric: value}} for every query that is both judged and retrieved, as trec_eval scores it.

    A judged query missing from the run is skipped, as trec_eval skips it without ``-c``; so is a query
    with no hit, which a run file cannot list. Judged passages missing from the corpus stay in the
    qrels: they count as relevant passages that nothing retrieves. Binary metrics (MAP, Recall, P, MRR)
    count every label >= 1 as relevant; NDCG uses the grades.
    """
    run = {query_id: hits for query_id, hits in run.items() if hits}
    scored = pytrec_eval.RelevanceEvaluator(qrels, set(TREC_MEASURES.values())).evaluate(run)
    reciprocal = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top_hits(run, MRR_DEPTH))
    return {
        query_id: {
            **{name: values[measure] for name, measure in TREC_MEASURES.items()},
            f"MRR@{MRR_DEPTH}": reciprocal[query_id]["recip_rank"],
        }
        for query_id, values in scored.items()
    }


def per_query_metric(qrels: dict[str, dict[str, int]], run: Run, metric: str = "NDCG@10") -> dict[str, float]:
    """{query id: ``metric``} of every query ``per_query_metrics`` scores: the values ``compute_metrics`` averages.

    The input of a paired test over queries (``sycl.evaluation.significance``). Raises ValueError for a
    name not in METRICS.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}")
    return {query_id: values[metric] for query_id, values in per_query_metrics(qrels, run).items()}


def per_query_ndcg(qrels: dict[str, dict[str, int]], run: Run, cutoff: int = 10) -> dict[str, float]:
    """nDCG@cutoff of every query both judged and in ``run``, from pytrec_eval, at any cutoff (METRICS has
    1, 3, 5, 10 and 100, where it equals ``per_query_metric(qrels, run, f"NDCG@{cutoff}")``)."""
    measure = f"ndcg_cut.{cutoff}"
    scores = pytrec_eval.RelevanceEvaluator(qrels, {measure}).evaluate(run)
    return {query_id: values[f"ndcg_cut_{cutoff}"] for query_id, values in scores.items()}


def compute_metrics(qrels: dict[str, dict[str, int]], run: Run) -> dict[str, float]:
    """The metrics in METRICS, averaged over the queries ``per_query_metrics`` scores.

    Means use ``math.fsum``, so they do not depend on the order queries come in.
    """
    per_query = per_query_metrics(qrels, run)
    if not per_query:
        raise ValueError("no query is both judged and retrieved: nothing to score")
    return {name: math.fsum(values[name] for values in per_query.values()) / len(per_query) for name in METRICS}

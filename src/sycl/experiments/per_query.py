"""Per-query comparison of two models' runs: which queries one ranks better, and what it put on top."""

import statistics
from collections import defaultdict
from pathlib import Path

# per_query_ndcg lives with the other metrics, where evaluation uses it; notebooks/analysis.ipynb calls it from here.
from sycl.evaluation.metrics import Run, per_query_ndcg  # noqa: F401


def read_trec_run(path: str | Path) -> Run:
    """A TREC run file (``query-id Q0 corpus-id rank score tag``) -> {query id: {corpus id: score}}."""
    run: Run = defaultdict(dict)
    for line in Path(path).read_text().splitlines():
        query_id, _, corpus_id, _, score, _ = line.split()
        run[query_id][corpus_id] = float(score)
    return dict(run)


def mean_over_seeds(per_seed: list[dict[str, float]]) -> dict[str, float]:
    """Average each query's value over runs (seeds) of one setting.

    Raises ValueError with the counts when the runs do not score the same queries.
    """
    if any(run.keys() != per_seed[0].keys() for run in per_seed):
        sizes = ", ".join(str(len(run)) for run in per_seed)
        raise ValueError(f"the seeds' runs do not score the same queries (they score {sizes} queries)")
    return {q: statistics.mean(run[q] for run in per_seed) for q in per_seed[0]}


def differences(a: dict[str, float], b: dict[str, float]) -> list[tuple[str, float, float, float]]:
    """(query id, a, b, a - b) for every query, largest advantage of a first."""
    rows = [(q, a[q], b[q], a[q] - b[q]) for q in a if q in b]
    return sorted(rows, key=lambda row: -row[3])


def top_levels(run: Run, qrels: dict[str, dict[str, int]], query_id: str, k: int = 5) -> list[int | None]:
    """The judged level of each of the top-k passages (None = unjudged), e.g. [3, 1, 2, 0, None]."""
    ranked = sorted(run[query_id], key=lambda d: -run[query_id][d])[:k]
    return [qrels[query_id].get(d) for d in ranked]

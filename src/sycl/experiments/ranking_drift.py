"""How much training changed a model's rankings, measured without labels: the share of the base model's top k
that the trained model keeps, per query, averaged (1 = the same top-k sets, 0 = disjoint).

    python -m sycl.experiments.ranking_drift <run dir> [<run dir> ...] [--k 10]

Reads each run's ``runs/results_base-<dataset>.trec`` and ``runs/results-<dataset>.trec`` (written by
train.py's end-of-run test). On a real collection the base model was not trained for, a small share says the
model moved far from what it ranked before (forgetting), whether or not the judged metrics noticed.
"""

import argparse
from pathlib import Path

from sycl.evaluation.metrics import Run, trec_order
from sycl.experiments.per_query import read_trec_run


def top_k_kept(base: Run, trained: Run, k: int = 10) -> float:
    """Mean over the base run's queries of |top_k(base) & top_k(trained)| / k, both in trec_eval's order."""
    shares = []
    for query_id, hits in base.items():
        base_top = {doc for doc, _ in trec_order(hits)[:k]}
        trained_top = {doc for doc, _ in trec_order(trained.get(query_id, {}))[:k]}
        shares.append(len(base_top & trained_top) / k)
    return sum(shares) / len(shares)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="train.py run folders")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    for run_dir in map(Path, args.runs):
        cells = []
        for trained_file in sorted((run_dir / "runs").glob("results-*.trec")):
            dataset = trained_file.stem.removeprefix("results-")
            base_file = run_dir / "runs" / f"results_base-{dataset}.trec"
            if base_file.is_file():
                kept = top_k_kept(read_trec_run(base_file), read_trec_run(trained_file), args.k)
                cells.append(f"{dataset} {kept:.3f}")
        print(f"{run_dir}: top {args.k} kept: " + (", ".join(cells) or "no run files"))


if __name__ == "__main__":
    main()

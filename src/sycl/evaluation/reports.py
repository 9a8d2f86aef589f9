"""Results files a person reads: results.json, a markdown table with a mean row, TREC run files."""

import json
from pathlib import Path

from sycl.evaluation.metrics import METRICS, Run
from sycl.files import write_text_atomically

TABLE_METRICS = ("NDCG@10", "MRR@10", "MAP@100", "Recall@100", "P@10")
Results = dict[str, dict[str, float]]
"""dataset -> {metric: value}"""


def mean_row(results: Results) -> dict[str, float]:
    return {m: sum(r[m] for r in results.values()) / len(results) for m in METRICS}


def results_table(results: Results, metrics=TABLE_METRICS) -> str:
    """Markdown table: one row per dataset, then the mean over datasets."""
    lines = ["| dataset | " + " | ".join(metrics) + " |", "|---|" + "---:|" * len(metrics)]
    rows = list(results.items()) + ([("**mean**", mean_row(results))] if len(results) > 1 else [])
    lines += [f"| {name} | " + " | ".join(f"{r[m]:.4f}" for m in metrics) + " |" for name, r in rows]
    return "\n".join(lines) + "\n"


def comparison_table(base: Results, trained: Results, metric: str = "NDCG@10") -> str:
    """Markdown table of base vs trained ``metric`` per dataset, with the difference."""
    lines = [f"| dataset | base {metric} | trained {metric} | difference |", "|---|---:|---:|---:|"]
    rows = [(name, base[name][metric], trained[name][metric]) for name in trained]
    if len(rows) > 1:
        rows.append(("**mean**", mean_row(base)[metric], mean_row(trained)[metric]))
    lines += [f"| {name} | {b:.4f} | {t:.4f} | {t - b:+.4f} |" for name, b, t in rows]
    return "\n".join(lines) + "\n"


def trec_run(run: Run, tag: str) -> str:
    """TREC format: ``query-id Q0 corpus-id rank score tag``, best first."""
    lines = []
    for query_id, hits in run.items():
        ranked = sorted(hits.items(), key=lambda h: -h[1])
        lines += [f"{query_id} Q0 {doc} {rank} {score:.6f} {tag}" for rank, (doc, score) in enumerate(ranked, 1)]
    return "\n".join(lines) + "\n"


def write_results(
    output_dir: str | Path, results: Results, runs: dict[str, Run], prefix: str = "results", tag: str = "sycl"
) -> None:
    """Write ``<prefix>.json``, ``<prefix>.md`` and ``runs/<prefix>-<dataset>.trec`` under output_dir."""
    output_dir = Path(output_dir)
    for dataset, run in runs.items():
        safe = dataset.replace("/", "_")
        write_text_atomically(output_dir / "runs" / f"{prefix}-{safe}.trec", trec_run(run, tag))
    write_text_atomically(output_dir / f"{prefix}.md", results_table(results))
    write_text_atomically(output_dir / f"{prefix}.json", json.dumps(results, indent=2) + "\n")

"""Results files a person reads: results.json, a markdown table with a mean row, TREC run files, and
results_checks.json, what each dataset's files held that evaluation had to decide on (missing texts,
missing passages, self-hits); results.json keeps only {dataset: {metric: value}} for its readers."""

import json
from pathlib import Path

from sycl.evaluation.metrics import METRICS, Run, trec_order
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
    """TREC format: ``query-id Q0 corpus-id rank score tag``, ranks in ``trec_order``.

    Scores are written with ``repr``, which reads back as the same float, so trec_eval on the file ranks
    exactly as the metrics did and gives exactly the same values.
    """
    lines = []
    for query_id, hits in run.items():
        ranked = trec_order(hits)
        lines += [f"{query_id} Q0 {doc} {rank} {score!r} {tag}" for rank, (doc, score) in enumerate(ranked, 1)]
    return "\n".join(lines) + "\n"


def write_run(output_dir: str | Path, dataset: str, run: Run, prefix: str = "results", tag: str = "sycl") -> None:
    """Write ``runs/<prefix>-<dataset>.trec`` under output_dir (a "/" in the dataset name becomes "_")."""
    safe = dataset.replace("/", "_")
    write_text_atomically(Path(output_dir) / "runs" / f"{prefix}-{safe}.trec", trec_run(run, tag))


def write_summary(
    output_dir: str | Path, results: Results, prefix: str = "results", checks: dict[str, dict] | None = None
) -> None:
    """Write ``<prefix>.json`` and ``<prefix>.md``, and ``<prefix>_checks.json`` when ``checks`` are given."""
    output_dir = Path(output_dir)
    write_text_atomically(output_dir / f"{prefix}.md", results_table(results))
    write_text_atomically(output_dir / f"{prefix}.json", json.dumps(results, indent=2) + "\n")
    if checks is not None:
        write_text_atomically(output_dir / f"{prefix}_checks.json", json.dumps(checks, indent=2) + "\n")

"""Results files a person reads: results.json, a markdown table with a mean row, TREC run files, and
results_checks.json, what each dataset's files held that evaluation had to decide on (missing texts,
missing passages, self-hits) and, for a dataset read from the Hugging Face Hub, which commit of each file
(``"hub_files": {URI: commit}``); results.json keeps only {dataset: {metric: value}} for its readers. After
training, comparison.md and comparison.json: base vs trained per dataset, with paired tests over queries."""

import json
from dataclasses import dataclass
from pathlib import Path

from sycl.evaluation.metrics import METRICS, Run, trec_order
from sycl.evaluation.significance import PairedTest
from sycl.files import write_text_atomically

TABLE_METRICS = ("NDCG@10", "MRR@10", "MAP@100", "Recall@100", "P@10")
Results = dict[str, dict[str, float]]
"""dataset -> {metric: value}"""
SIGNIFICANCE_LEVEL = 0.05


@dataclass(frozen=True)
class Average:
    """A named mean over some of a benchmark's datasets (``benchmark.average``): the summary row a paper reports,
    e.g. BEIR's 14 sets beside MS MARCO and TREC DL, whose mean with them would be no figure anyone reports."""

    name: str
    datasets: tuple[str, ...]


def mean_row(results: Results) -> dict[str, float]:
    return {m: sum(r[m] for r in results.values()) / len(results) for m in METRICS}


def results_table(results: Results, metrics=TABLE_METRICS, average: Average | None = None) -> str:
    """Markdown table: one row per dataset, then the mean over datasets.

    With ``average`` the last row is instead its mean over its datasets, shown once all of them have results.
    """
    lines = ["| dataset | " + " | ".join(metrics) + " |", "|---|" + "---:|" * len(metrics)]
    rows = list(results.items())
    if average is None:
        rows += [("**mean**", mean_row(results))] if len(results) > 1 else []
    elif set(average.datasets) <= set(results):
        rows.append((f"**{average.name}**", mean_row({name: results[name] for name in average.datasets})))
    lines += [f"| {name} | " + " | ".join(f"{r[m]:.4f}" for m in metrics) + " |" for name, r in rows]
    return "\n".join(lines) + "\n"


def comparison_table(
    base: Results, trained: Results, metric: str = "NDCG@10", tests: dict[str, PairedTest] | None = None
) -> str:
    """Markdown table of base vs trained ``metric`` per dataset, with the difference (trained - base).

    With ``tests`` ({dataset: paired test of trained against base over its queries, see ``significance``})
    it adds the 95% confidence interval of the difference, the paired t-test's p (a trailing ``*`` below
    SIGNIFICANCE_LEVEL) and the number of queries n, and a line under the table saying so. The mean row
    shows the difference of the means but no test ("-"): datasets are not exchangeable samples of one
    population, so their spread is no error bar for the mean, and their queries are not pooled.
    """
    header = f"| dataset | base {metric} | trained {metric} | difference |"
    if tests is not None:
        header += " 95% CI | p (t-test) | n |"
    lines = [header, "|---|" + "---:|" * (header.count("|") - 2)]
    rows = [(name, base[name][metric], trained[name][metric]) for name in trained]
    if len(rows) > 1:
        rows.append(("**mean**", mean_row(base)[metric], mean_row(trained)[metric]))
    for name, b, t in rows:
        line = f"| {name} | {b:.4f} | {t:.4f} | {t - b:+.4f} |"
        if tests is not None:
            test = tests.get(name)
            line += f" {ci_cell(test)} | {p_cell(test.p_t)} | {test.n} |" if test else " - | - | - |"
        lines.append(line)
    if tests is not None:
        lines += [
            "",
            f"p with a trailing * is below {SIGNIFICANCE_LEVEL}: two-sided paired t-test over the dataset's queries; "
            "the mean row has no test (datasets are not exchangeable samples).",
        ]
    return "\n".join(lines) + "\n"


def ci_cell(test: PairedTest) -> str:
    """The confidence interval of the mean difference as ``[-0.0120, +0.0400]``."""
    return f"[{test.ci_low:+.4f}, {test.ci_high:+.4f}]"


def p_cell(p: float) -> str:
    """A p-value to 3 decimals (``<0.001`` below), with a trailing ``*`` below SIGNIFICANCE_LEVEL."""
    text = f"{p:.3f}" if p >= 0.001 else "<0.001"
    return text + ("*" if p < SIGNIFICANCE_LEVEL else "")


def comparison_records(
    base: Results, trained: Results, tests: dict[str, PairedTest], metric: str = "NDCG@10"
) -> dict[str, dict[str, float | int | str]]:
    """comparison.json: {dataset: {metric, base, trained, difference, ci_low, ci_high, p_t, p_randomization, n}}.

    base, trained and difference are the results' means (as in the table); the rest is the dataset's test.
    """
    return {
        name: {
            "metric": metric,
            "base": base[name][metric],
            "trained": trained[name][metric],
            "difference": trained[name][metric] - base[name][metric],
            "ci_low": tests[name].ci_low,
            "ci_high": tests[name].ci_high,
            "p_t": tests[name].p_t,
            "p_randomization": tests[name].p_randomization,
            "n": tests[name].n,
        }
        for name in trained
    }


def write_comparison(
    output_dir: str | Path, base: Results, trained: Results, tests: dict[str, PairedTest], metric: str = "NDCG@10"
) -> str:
    """Write ``comparison.md`` (``comparison_table``) and ``comparison.json`` (``comparison_records``); return the
    table."""
    output_dir = Path(output_dir)
    table = comparison_table(base, trained, metric, tests)
    write_text_atomically(output_dir / "comparison.md", table)
    records = comparison_records(base, trained, tests, metric)
    write_text_atomically(output_dir / "comparison.json", json.dumps(records, indent=2) + "\n")
    return table


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
    """Write ``run_file(output_dir, dataset, prefix)``."""
    write_text_atomically(run_file(output_dir, dataset, prefix), trec_run(run, tag))


def run_file(output_dir: str | Path, dataset: str, prefix: str = "results") -> Path:
    """``output_dir/runs/<prefix>-<dataset>.trec``, where ``write_run`` puts a run (a "/" in the name becomes "_")."""
    return Path(output_dir) / "runs" / f"{prefix}-{dataset.replace('/', '_')}.trec"


def write_summary(
    output_dir: str | Path,
    results: Results,
    prefix: str = "results",
    checks: dict[str, dict] | None = None,
    average: Average | None = None,
) -> None:
    """Write ``<prefix>.json`` and ``<prefix>.md``, and ``<prefix>_checks.json`` when ``checks`` are given.

    ``average`` ends the table (``results_table``).
    """
    output_dir = Path(output_dir)
    write_text_atomically(output_dir / f"{prefix}.md", results_table(results, average=average))
    write_text_atomically(output_dir / f"{prefix}.json", json.dumps(results, indent=2) + "\n")
    if checks is not None:
        write_text_atomically(output_dir / f"{prefix}_checks.json", json.dumps(checks, indent=2) + "\n")

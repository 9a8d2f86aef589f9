"""A comparison report over runs: tables (per run, mean +- std over seeds, and each setting against the base
model with paired tests over queries), bar plots, loss curves."""

import html
import statistics
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: report.py runs on headless machines and in CI
import matplotlib.pyplot as plt  # noqa: E402

from sycl.evaluation.reports import SIGNIFICANCE_LEVEL, ci_cell, p_cell  # noqa: E402
from sycl.experiments.against_base import SettingTest, settings_against_base  # noqa: E402
from sycl.experiments.runs import RunRecord  # noqa: E402


def summarize(records: list[RunRecord], metric: str = "NDCG@10") -> dict[str, dict[str, list[float]]]:
    """setting -> dataset -> the metric of every finished seed."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        for dataset, row in (record.results or {}).items():
            values[record.setting][dataset].append(row[metric])
    return values


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} +- {statistics.stdev(values):.4f}"


def summary_table(records: list[RunRecord], metric: str = "NDCG@10") -> str:
    """Markdown: one row per setting, mean +- std over seeds per dataset, n = finished seeds."""
    summary = summarize(records, metric)
    datasets = sorted({d for per_dataset in summary.values() for d in per_dataset})
    lines = [
        "| setting | " + " | ".join(f"{d} {metric}" for d in datasets) + " | n |",
        "|---|" + "---:|" * (len(datasets) + 1),
    ]
    for setting, per_dataset in summary.items():
        cells = [mean_std(per_dataset[d]) if per_dataset.get(d) else "-" for d in datasets]
        count = max(len(v) for v in per_dataset.values())
        lines.append(f"| {setting} | " + " | ".join(cells) + f" | {count} |")
    return "\n".join(lines) + "\n"


def runs_table(records: list[RunRecord], metrics=("NDCG@10", "MRR@10", "Recall@100")) -> str:
    """Markdown: every run with its overrides, status and metrics per dataset."""
    lines = [
        "| run | setting | status | dataset | " + " | ".join(metrics) + " |",
        "|---|---|---|---|" + "---:|" * len(metrics),
    ]
    for record in records:
        name = record.path.name
        overrides = record.setting + (f" seed={record.seed}" if record.seed else "")
        if record.failure:
            lines.append(f"| {name} | {overrides} | failed: {record.failure['error']} | - |" + " - |" * len(metrics))
        elif not record.results:
            lines.append(f"| {name} | {overrides} | no results | - |" + " - |" * len(metrics))
        for dataset, row in (record.results or {}).items():
            lines.append(
                f"| {name} | {overrides} | ok | {dataset} | " + " | ".join(f"{row[m]:.4f}" for m in metrics) + " |"
            )
    return "\n".join(lines) + "\n"


def against_base_table(tests: list[SettingTest], metric: str = "NDCG@10") -> str:
    """Markdown: per setting and dataset, base vs the setting's mean over seeds, with its paired tests.

    Columns: seeds, base and setting means over the tested queries, difference, 95% CI of the difference,
    p of the paired t-test (``*`` below SIGNIFICANCE_LEVEL) and of the randomization test, n queries.
    """
    lines = [
        f"| setting | dataset | seeds | base {metric} | setting {metric} | difference | 95% CI | p (t-test) "
        "| p (randomization) | n |",
        "|---|---|" + "---:|" * 8,
    ]
    for row in tests:
        test = row.test
        lines.append(
            f"| {row.setting} | {row.dataset} | {row.seeds} | {row.base:.4f} | {row.trained:.4f} | "
            f"{test.mean_difference:+.4f} | {ci_cell(test)} | {p_cell(test.p_t)} | {p_cell(test.p_randomization)} "
            f"| {test.n} |"
        )
    return "\n".join(lines) + "\n"


def against_base_section(records: list[RunRecord], metric: str = "NDCG@10") -> list[str]:
    """The report's section on settings against the base model, or none when no job has both run files."""
    tests, notes = settings_against_base(records, metric)
    if not tests and not notes:
        return []
    return [
        f"## Against the base model (paired tests over queries, test {metric})\n",
        against_base_table(tests, metric),
        f"Per query, {metric} averaged over the setting's seeds against the base model's, from each job's run files "
        f"and its benchmark's qrels; 95% CI of the mean difference (Student t). p with a trailing * is below "
        f"{SIGNIFICANCE_LEVEL}; both tests are two-sided and paired: Student's t-test, and the randomization test "
        "that flips the signs of the differences (Smucker et al., CIKM 2007). No correction for testing several "
        "settings.\n",
        *[f"- {note}" for note in notes],
        "",
    ]


def plot_metric_bars(records: list[RunRecord], path: Path, metric: str = "NDCG@10") -> Path:
    """Grouped bars: datasets on the x axis, one bar per setting, error bars = std over seeds."""
    summary = summarize(records, metric)
    datasets = sorted({d for per_dataset in summary.values() for d in per_dataset})
    settings = list(summary)
    width = 0.8 / max(1, len(settings))
    figure, axis = plt.subplots(figsize=(max(6, 1.5 * len(datasets) * max(1, len(settings)) ** 0.5), 4))
    for i, setting in enumerate(settings):
        means = [statistics.mean(summary[setting].get(d) or [0.0]) for d in datasets]
        stds = [statistics.stdev(v) if len(v := summary[setting].get(d, [])) > 1 else 0.0 for d in datasets]
        axis.bar([x + i * width for x in range(len(datasets))], means, width, yerr=stds, capsize=3, label=setting)
    axis.set_xticks([x + width * (len(settings) - 1) / 2 for x in range(len(datasets))], datasets)
    axis.set_ylabel(metric)
    axis.set_title(f"{metric} per dataset (mean +- std over seeds)")
    low = min((v for s in summary.values() for vs in s.values() for v in vs), default=0.0)
    axis.set_ylim(max(0.0, low - 0.1), 1.0)
    axis.legend(fontsize="small", bbox_to_anchor=(1.02, 1), loc="upper left")
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)
    return path


def plot_loss_curves(records: list[RunRecord], path: Path) -> Path:
    """train/loss against step, one panel per setting (each line one run, e.g. one seed).

    Panels rather than one axis: losses of different kinds live on different scales (ListNet's KL starts
    near 7, RankNet's pair loss near 0.05), so on one shared axis most curves would be flat lines.
    """
    by_setting: dict[str, list[RunRecord]] = defaultdict(list)
    for record in records:
        if record.loss_curve:
            by_setting[record.setting].append(record)
    columns = min(4, max(1, len(by_setting)))
    rows = max(1, -(-len(by_setting) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False, sharex=True)
    for axis, (setting, runs) in zip(axes.flat, by_setting.items(), strict=False):
        for index, record in enumerate(runs):
            steps, losses = zip(*record.loss_curve, strict=True)
            axis.plot(steps, losses, color=f"C{index % 10}", alpha=0.8)
        axis.set_title(setting, fontsize="small")
        axis.tick_params(labelsize="x-small")
    for axis in list(axes.flat)[len(by_setting) :]:
        axis.set_visible(False)
    for column in range(min(columns, len(by_setting))):  # x axis under each column's lowest panel, even a short one
        lowest = axes[(len(by_setting) - 1 - column) // columns, column]
        lowest.tick_params(labelbottom=True)
        lowest.set_xlabel("step", fontsize="small")
    for axis in axes[:, 0]:
        axis.set_ylabel("train/loss", fontsize="small")
    figure.suptitle("Training loss per setting (each line one run)")
    figure.tight_layout()
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)
    return path


def write_report(
    records: list[RunRecord],
    output_dir: Path,
    title: str = "SyCL run comparison",
    shared_overrides: list[str] | None = None,
) -> Path:
    """Write report.md, report.html and the plots into output_dir; returns the markdown path."""
    output_dir.mkdir(parents=True, exist_ok=True)
    bars = plot_metric_bars(records, output_dir / "ndcg_by_setting.png")
    curves = plot_loss_curves(records, output_dir / "train_loss.png")
    failed = [r for r in records if r.failure]
    sections = [
        f"# {title}\n",
        f"{len(records)} runs, {len(records) - len(failed)} finished, {len(failed)} failed.\n",
        f"Overrides shared by every run: {' '.join(shared_overrides) if shared_overrides else '(none)'}\n",
        "## Mean +- std over seeds (test NDCG@10)\n",
        summary_table(records),
        f"![NDCG@10 per setting]({bars.name})\n",
        f"![Training loss]({curves.name})\n",
        *against_base_section(records),
        "## Every run\n",
        runs_table(records),
    ]
    if failed:
        sections += ["## Failures\n"] + [
            f"- `{r.path}`: {r.failure['error']}: {r.failure['message']}\n" for r in failed
        ]
    markdown = "\n".join(sections)
    (output_dir / "report.md").write_text(markdown)
    (output_dir / "report.html").write_text(markdown_to_html(markdown, title))
    return output_dir / "report.md"


def markdown_to_html(markdown: str, title: str) -> str:
    """A small converter for exactly what write_report emits: headings, paragraphs, tables, images, lists."""
    body, table = [], []

    def flush_table():
        if table:
            rows = [r for r in table if not set(r.replace("|", "").strip()) <= set("-:")]
            cells = [[html.escape(c.strip()) for c in r.strip().strip("|").split("|")] for r in rows]
            head = "".join(f"<th>{c}</th>" for c in cells[0])
            rest = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in cells[1:])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rest}</tbody></table>")
            table.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush_table()
        if line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("![") and "](" in line:
            alt, source = line[2:].split("](", 1)
            body.append(f'<p><img src="{html.escape(source.rstrip(")"))}" alt="{html.escape(alt)}"></p>')
        elif line.startswith("- "):
            body.append(f"<li>{html.escape(line[2:])}</li>")
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    flush_table()
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
    )
    head = f"<meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style>"
    return f"<!doctype html><html><head>{head}</head><body>{''.join(body)}</body></html>\n"

"""A comparison report over runs: tables (per run, mean +- std over seeds with the difference to the base model,
each setting against the base model and against a reference setting with paired tests over queries), bar plots,
loss curves."""

import html
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: report.py runs on headless machines and in CI
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from sycl.evaluation.reports import SIGNIFICANCE_LEVEL, ci_cell, p_cell  # noqa: E402
from sycl.experiments.against_base import SettingTest, per_query_values, tests_against_base  # noqa: E402
from sycl.experiments.against_reference import (  # noqa: E402
    ReferenceTest,
    choose_reference,
    settings_against_reference,
)
from sycl.experiments.runs import RunRecord  # noqa: E402

# Means closer than this are the same (one base model evaluated by several jobs, or the same queries averaged
# in another order): they differ by float noise only.
SAME_MEAN_TOLERANCE = 1e-6


def summarize(records: list[RunRecord], metric: str = "NDCG@10") -> dict[str, dict[str, list[float]]]:
    """setting -> dataset -> the metric of every finished seed."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        for dataset, row in (record.results or {}).items():
            values[record.setting][dataset].append(row[metric])
    return values


def summarize_base(records: list[RunRecord], metric: str = "NDCG@10") -> dict[str, dict[str, list[float]]]:
    """setting -> dataset -> the base model's metric (``results_base.json``) in every finished seed's job."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        for dataset in record.results or {}:
            if dataset in (record.base_results or {}):
                values[record.setting][dataset].append(record.base_results[dataset][metric])
    return values


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} +- {statistics.stdev(values):.4f}"


def vs_base_cell(values: list[float], base: list[float], test: SettingTest | None) -> str:
    """The setting's mean minus the base model's, with the p of its paired t-test when there is one.

    A test over fewer queries than the means (qrels edited since the runs) tests another difference: the
    cell then gives that difference and n with the p, so the p is never read as the shown difference's.
    """
    if not values or not base:
        return "-"
    difference = statistics.mean(values) - statistics.mean(base)
    if test is None:
        return f"{difference:+.4f}"
    if abs(test.trained - test.base - difference) <= SAME_MEAN_TOLERANCE:
        return f"{difference:+.4f} (p {p_cell(test.test.p_t)})"
    tested = f"{test.test.mean_difference:+.4f} on n={test.test.n}"
    return f"{difference:+.4f} (tested: {tested}, p {p_cell(test.test.p_t)})"


def summary_table(records: list[RunRecord], metric: str = "NDCG@10", tests: Sequence[SettingTest] = ()) -> str:
    """Markdown: one row per setting; per dataset the mean +- std over seeds and its difference to the base
    model (same jobs' ``results_base.json``), with the paired t-test's p from ``tests`` where given;
    n = finished seeds."""
    summary, base = summarize(records, metric), summarize_base(records, metric)
    test_of = {(t.setting, t.dataset): t for t in tests}
    datasets = sorted({d for per_dataset in summary.values() for d in per_dataset})
    lines = [
        "| setting | " + " | ".join(f"{d} {metric} | {d} vs base" for d in datasets) + " | n |",
        "|---|" + "---:|" * (2 * len(datasets) + 1),
    ]
    for setting, per_dataset in summary.items():
        cells = [
            cell
            for d in datasets
            for cell in (
                mean_std(per_dataset[d]) if per_dataset.get(d) else "-",
                vs_base_cell(per_dataset.get(d, []), base[setting].get(d, []), test_of.get((setting, d))),
            )
        ]
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


def test_cells(test) -> str:
    """The cells every paired-test table ends with: difference, 95% CI, t-test p, randomization p, n."""
    return (
        f"{test.mean_difference:+.4f} | {ci_cell(test)} | {p_cell(test.p_t)} | {p_cell(test.p_randomization)} "
        f"| {test.n} |"
    )


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
            f"| {row.setting} | {row.dataset} | {row.seeds} | {row.base:.4f} | {row.trained:.4f} | {test_cells(test)}"
        )
    return "\n".join(lines) + "\n"


def against_base_section(tests: list[SettingTest], notes: list[str], metric: str = "NDCG@10") -> list[str]:
    """The report's section on settings against the base model, or none when no job has both run files."""
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


def against_reference_table(tests: list[ReferenceTest], reference: str, metric: str = "NDCG@10") -> str:
    """Markdown: per setting and dataset, the reference setting's and the setting's means over seeds with the
    paired tests of the setting against the reference (columns as ``against_base_table``)."""
    lines = [
        f"| setting | dataset | seeds | {reference} seeds | {reference} {metric} | setting {metric} | difference "
        "| 95% CI | p (t-test) | p (randomization) | n |",
        "|---|---|" + "---:|" * 9,
    ]
    for row in tests:
        test = row.test
        lines.append(
            f"| {row.setting} | {row.dataset} | {row.seeds} | {row.reference_seeds} | {row.reference:.4f} | "
            f"{row.value:.4f} | {test_cells(test)}"
        )
    return "\n".join(lines) + "\n"


def against_reference_section(
    tests: list[ReferenceTest], notes: list[str], reference: str, metric: str = "NDCG@10"
) -> list[str]:
    """The report's section on settings against the reference setting, or none when nothing was compared."""
    if not tests and not notes:
        return []
    return [
        f"## Between settings: each against {reference} (paired tests over queries, test {metric})\n",
        against_reference_table(tests, reference, metric),
        f"Per query, {metric} averaged over each setting's seeds, the setting's against the reference's, from the "
        f"jobs' run files of the trained models; tests and CI as above (p with a trailing * is below "
        f"{SIGNIFICANCE_LEVEL}; no correction for testing several settings). report.py --reference '<setting>' "
        "chooses another reference.\n",
        *[f"- {note}" for note in notes],
        "",
    ]


def plot_metric_bars(records: list[RunRecord], path: Path, metric: str = "NDCG@10") -> Path:
    """Save ``metric_bars_figure`` to ``path``; returns the path."""
    return save(metric_bars_figure(records, metric), path)


def metric_bars_figure(records: list[RunRecord], metric: str = "NDCG@10") -> Figure:
    """Grouped bars: datasets on the x axis, one bar per setting (mean over seeds, value printed on the bar).

    The y axis starts at 0, so the bars' heights compare as the values do. Error bars (std over seeds) only on
    bars of 2 seeds or more; the legend gives each setting's n. A dashed line per dataset marks the base
    model's value (one line over the group when the settings share a base model, else one per bar).
    """
    summary, base = summarize(records, metric), summarize_base(records, metric)
    datasets = sorted({d for per_dataset in summary.values() for d in per_dataset})
    settings = list(summary)
    width = 0.8 / max(1, len(settings))
    figure, axis = plt.subplots(figsize=(max(6, 1.5 * len(datasets) * max(1, len(settings)) ** 0.5), 4))
    top = 1.0
    for i, setting in enumerate(settings):
        bars = [(x + i * width, values) for x, d in enumerate(datasets) if (values := summary[setting].get(d))]
        seeds = max(len(values) for _, values in bars)
        means = [statistics.mean(values) for _, values in bars]
        container = axis.bar([x for x, _ in bars], means, width, label=f"{setting} (n={seeds})")
        axis.bar_label(container, [f"{m:.3f}" for m in means], label_type="center", rotation=90, fontsize="x-small")
        spread = [(x, statistics.mean(v), statistics.stdev(v)) for x, v in bars if len(v) >= 2]
        if spread:
            xs, ys, stds = zip(*spread, strict=True)
            axis.errorbar(xs, ys, yerr=stds, fmt="none", ecolor="black", capsize=3, label="_std over seeds")
            top = max(top, *(y + std for y, std in zip(ys, stds, strict=True)))
    labelled = False
    for x, dataset in enumerate(datasets):
        for left, right, value in base_line_spans(base, settings, dataset, x, width):
            label = "_base" if labelled else "base model"  # one legend entry for all of them
            axis.plot([left, right], [value, value], "k--", linewidth=1, gid=f"base {dataset}", label=label)
            backing = {"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1}  # legible over bars
            axis.text(left, value, f"base {value:.3f}", fontsize="x-small", va="bottom", bbox=backing)
            labelled = True
    axis.set_xticks([x + width * (len(settings) - 1) / 2 for x in range(len(datasets))], datasets)
    axis.set_ylabel(metric)
    axis.set_title(f"{metric} per dataset: mean over seeds; error bars: std where n >= 2")
    axis.set_ylim(0.0, top)
    axis.legend(fontsize="small", bbox_to_anchor=(1.02, 1), loc="upper left")
    return figure


def base_line_spans(
    base: dict[str, dict[str, list[float]]], settings: list[str], dataset: str, x: int, width: float
) -> list[tuple[float, float, float]]:
    """(left, right, value) of the base model's line(s) on ``dataset``'s group of bars, centred on ``x``.

    One line over the group when every setting's jobs report the same base value (one base model), else a
    line over each bar: a sweep over ``model=`` has a base model per setting.
    """
    values = {i: statistics.mean(base[s][dataset]) for i, s in enumerate(settings) if base[s].get(dataset)}
    if not values:
        return []
    if max(values.values()) - min(values.values()) <= SAME_MEAN_TOLERANCE:
        return [(x - width / 2, x + (len(settings) - 0.5) * width, statistics.mean(values.values()))]
    return [(x + (i - 0.5) * width, x + (i + 0.5) * width, value) for i, value in values.items()]


def plot_loss_curves(records: list[RunRecord], path: Path) -> Path:
    """Save ``loss_curves_figure`` to ``path``; returns the path."""
    return save(loss_curves_figure(records), path)


def loss_curves_figure(records: list[RunRecord]) -> Figure:
    """train/loss against step, one panel per setting (each line one run, e.g. one seed); whole-number steps.

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
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))  # a step 2.5 does not exist
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
    return figure


def save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)
    return path


def write_report(
    records: list[RunRecord],
    output_dir: Path,
    title: str = "SyCL run comparison",
    shared_overrides: list[str] | None = None,
    reference: str | None = None,
) -> Path:
    """Write report.md, report.html and the plots into output_dir; returns the markdown path.

    ``reference``: the setting the others are tested against (``against_reference.choose_reference``).
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    reference = choose_reference(list(dict.fromkeys(r.setting for r in records)), reference)
    values, notes = per_query_values(records)
    base_tests, base_notes = tests_against_base(values)
    reference_tests, reference_notes = settings_against_reference(values, reference)
    bars = plot_metric_bars(records, output_dir / "ndcg_by_setting.png")
    curves = plot_loss_curves(records, output_dir / "train_loss.png")
    failed = [r for r in records if r.failure]
    sections = [
        f"# {title}\n",
        f"{len(records)} runs, {len(records) - len(failed)} finished, {len(failed)} failed.\n",
        f"Overrides shared by every run: {' '.join(shared_overrides) if shared_overrides else '(none)'}\n",
        "## Mean +- std over seeds (test NDCG@10)\n",
        summary_table(records, tests=base_tests),
        "vs base: the setting's mean minus the base model's (results_base.json of the same jobs); in parentheses the "
        "p of the paired t-test over queries (see Against the base model), where the jobs kept their run files.\n",
        f"![NDCG@10 per setting]({bars.name})\n",
        f"![Training loss]({curves.name})\n",
        *against_base_section(base_tests, notes + base_notes),
        *against_reference_section(reference_tests, reference_notes, reference),
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

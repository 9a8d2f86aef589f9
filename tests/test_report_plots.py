"""report.py draws honestly and tests between settings: bars from 0 with their values, error bars only over several
seeds, the base model as a reference line, whole-number steps, a "vs base" column, and paired tests of each setting
against a reference setting that equal scipy's on independently computed per-query values."""

import statistics
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from matplotlib.container import BarContainer, ErrorbarContainer
from matplotlib.ticker import MaxNLocator
from scipy import stats

from sycl.evaluation.metrics import compute_metrics
from sycl.evaluation.reports import p_cell
from sycl.experiments.against_base import per_query_values, settings_against_base
from sycl.experiments.against_reference import choose_reference, settings_against_reference
from sycl.experiments.report import loss_curves_figure, metric_bars_figure, summary_table, write_report
from sycl.experiments.runs import RunRecord, label_settings, read_runs
from tests.conftest import CONF_DIR
from tests.test_significance import ndcg_at_10, random_run, toy_collection, write_job

ROOT = Path(CONF_DIR).parent
BASE_SEED = 100
# (loss, seed) -> the seed of the job's random run. InfoNCE is not the first setting: the default reference
# must be found by name. ListNet has one seed: no error bar.
JOBS = {
    ("loss=wasserstein", "1"): 3,
    ("loss=wasserstein", "2"): 4,
    ("loss=infonce", "1"): 1,
    ("loss=infonce", "2"): 2,
    ("loss=listnet", "1"): 5,
}
SEEDS_OF = {loss: [run for (name, _), run in JOBS.items() if name == loss] for loss, _ in JOBS}


@pytest.fixture
def sweep(tmp_path):
    """A finished 5-job multirun over a 12-query toy collection; returns (records, qrels)."""
    data_dir = tmp_path / "data"
    qrels = toy_collection(data_dir / "toy", queries=12)
    base_run = random_run(qrels, seed=BASE_SEED)
    for index, ((loss, seed), run_seed) in enumerate(JOBS.items()):
        job = tmp_path / "sweep" / str(index)
        write_job(job, data_dir, [loss, f"seed={seed}"], qrels, random_run(qrels, run_seed), base_run)
        # Three logged steps: a default axis would tick at 0.5, 1.5, ...
        (job / "csv" / "version_0").mkdir(parents=True)
        rows = [f"{step},{1.0 / (step + 1 + index):.4f}" for step in range(3)]
        (job / "csv" / "version_0" / "metrics.csv").write_text("step,train/loss\n" + "\n".join(rows) + "\n")
    records, _ = read_runs([tmp_path / "sweep"])
    return records, qrels


def ndcg(qrels, run_seed: int) -> float:
    return compute_metrics(qrels, random_run(qrels, run_seed))["NDCG@10"]


def bar_centres(container: BarContainer) -> list[float]:
    return [patch.get_x() + patch.get_width() / 2 for patch in container.patches]


def test_bars_start_at_zero_with_their_values_and_error_bars_only_over_two_seeds_or_more(sweep):
    records, qrels = sweep
    figure = metric_bars_figure(records)
    axis = figure.axes[0]
    assert axis.get_ylim()[0] == 0.0
    bars = {c.get_label(): c for c in axis.containers if isinstance(c, BarContainer)}
    assert set(bars) == {"loss=wasserstein (n=2)", "loss=infonce (n=2)", "loss=listnet (n=1)"}
    texts = {text.get_text() for text in axis.texts}
    for loss, run_seeds in SEEDS_OF.items():
        mean = statistics.mean(ndcg(qrels, seed) for seed in run_seeds)
        (bar,) = bars[f"{loss} (n={len(run_seeds)})"].patches
        assert bar.get_height() == pytest.approx(mean, abs=1e-12) and f"{mean:.3f}" in texts

    errors = [c for c in axis.containers if isinstance(c, ErrorbarContainer)]
    drawn = {}
    for container in errors:
        for (x, low), (_, high) in container.lines[2][0].get_segments():
            drawn[round(x, 9)] = (low, high)
    expected = {}
    for loss in ("loss=wasserstein", "loss=infonce"):
        values = [ndcg(qrels, seed) for seed in SEEDS_OF[loss]]
        mean, std = statistics.mean(values), statistics.stdev(values)
        expected[round(bar_centres(bars[f"{loss} (n=2)"])[0], 9)] = (mean - std, mean + std)
    assert drawn.keys() == expected.keys()  # none over the one-seed ListNet bar
    for x, (low, high) in expected.items():
        assert drawn[x] == pytest.approx((low, high), abs=1e-12)
    plt.close(figure)


def test_the_base_model_is_one_dashed_line_over_the_group_at_its_value(sweep):
    records, qrels = sweep
    figure = metric_bars_figure(records)
    axis = figure.axes[0]
    (line,) = [line for line in axis.lines if line.get_gid() == "base toy"]
    base = statistics.fmean(ndcg_at_10(qrels, random_run(qrels, BASE_SEED)).values())
    assert list(line.get_ydata()) == pytest.approx([base, base], abs=1e-12)
    patches = [p for c in axis.containers if isinstance(c, BarContainer) for p in c.patches]
    left, right = sorted(line.get_xdata())
    assert left == pytest.approx(min(p.get_x() for p in patches))
    assert right == pytest.approx(max(p.get_x() + p.get_width() for p in patches))
    assert line.get_linestyle() == "--" and "base model" in [t.get_text() for t in axis.get_legend().get_texts()]
    plt.close(figure)


def test_settings_with_different_base_models_get_a_base_line_each():
    records = [
        RunRecord(Path(f"/runs/{i}"), [model, "seed=1"], {"toy": {"NDCG@10": 0.5}}, {"toy": {"NDCG@10": base}})
        for i, (model, base) in enumerate((("model=a", 0.25), ("model=b", 0.375)))
    ]
    label_settings(records)
    figure = metric_bars_figure(records)
    axis = figure.axes[0]
    lines = sorted((line for line in axis.lines if line.get_gid() == "base toy"), key=lambda line: line.get_xdata()[0])
    bars = [c for c in axis.containers if isinstance(c, BarContainer)]
    assert [line.get_ydata()[0] for line in lines] == [0.25, 0.375]
    for line, container in zip(lines, bars, strict=True):
        assert statistics.mean(line.get_xdata()) == pytest.approx(bar_centres(container)[0])
    assert not [c for c in axis.containers if isinstance(c, ErrorbarContainer)]
    plt.close(figure)


def test_the_loss_plot_ticks_whole_steps(sweep):
    records, _ = sweep
    figure = loss_curves_figure(records)
    panels = [axis for axis in figure.axes if axis.get_visible()]
    assert len(panels) == 3
    figure.canvas.draw()
    for axis in panels:
        assert isinstance(axis.xaxis.get_major_locator(), MaxNLocator)
        ticks = [t for t in axis.get_xticks() if 0 <= t <= 2]
        assert ticks and all(float(t).is_integer() for t in ticks)
    plt.close(figure)


def table_rows(table: str) -> dict[str, list[str]]:
    """A markdown table's rows (after the header and its rule) by their first cell, split into cells."""
    return {line.split(" | ")[0].removeprefix("| "): line.split(" | ") for line in table.splitlines()[2:]}


def test_the_summary_has_a_vs_base_column_with_the_paired_p(sweep):
    records, qrels = sweep
    base = ndcg(qrels, BASE_SEED)
    table = summary_table(records)
    assert table.splitlines()[0] == "| setting | toy NDCG@10 | toy vs base | n |"
    rows = table_rows(table)
    for loss, run_seeds in SEEDS_OF.items():
        difference = statistics.mean(ndcg(qrels, seed) for seed in run_seeds) - base
        assert rows[loss][2] == f"{difference:+.4f}"

    tests, _ = settings_against_base(records)
    assert len(tests) == 3
    with_p = table_rows(summary_table(records, tests=tests))
    for test in tests:
        assert with_p[test.setting][2] == f"{rows[test.setting][2]} (p {p_cell(test.test.p_t)})"


def test_a_test_over_fewer_queries_than_the_means_shows_its_own_difference_beside_its_p(sweep, tmp_path):
    records, qrels = sweep
    toy_collection(tmp_path / "data" / "toy", queries=10)  # the qrels lost 2 of the runs' 12 queries
    tests, _ = settings_against_base(records)
    rows = table_rows(summary_table(records, tests=tests))
    base = ndcg(qrels, BASE_SEED)
    for test in tests:
        difference = statistics.mean(ndcg(qrels, seed) for seed in SEEDS_OF[test.setting]) - base
        tested = f"tested: {test.test.mean_difference:+.4f} on n=10, p {p_cell(test.test.p_t)}"
        assert test.test.n == 10 and rows[test.setting][2] == f"{difference:+.4f} ({tested})"


def test_each_setting_is_tested_against_the_reference_as_scipy_on_per_query_values_averaged_over_seeds(sweep):
    records, qrels = sweep
    values, notes = per_query_values(records)
    tests, reference_notes = settings_against_reference(values, "loss=infonce")
    assert notes == [] and reference_notes == []
    assert [(t.setting, t.dataset, t.seeds, t.reference_seeds) for t in tests] == [
        ("loss=wasserstein", "toy", 2, 2),
        ("loss=listnet", "toy", 1, 2),
    ]
    queries = sorted(qrels)

    def averaged(loss: str) -> list[float]:
        per_seed = [ndcg_at_10(qrels, random_run(qrels, seed)) for seed in SEEDS_OF[loss]]
        return [statistics.mean(run[q] for run in per_seed) for q in queries]

    reference = averaged("loss=infonce")
    for test in tests:
        setting = averaged(test.setting)
        expected = stats.ttest_rel(setting, reference)
        assert test.test.p_t == pytest.approx(expected.pvalue, rel=1e-6)
        assert test.test.n == 12 and test.reference == pytest.approx(statistics.fmean(reference), abs=1e-9)
        assert test.value - test.reference == pytest.approx(test.test.mean_difference, abs=1e-12)


def test_the_report_names_its_reference_and_another_can_be_chosen(sweep, tmp_path):
    records, _ = sweep
    markdown = write_report(records, tmp_path / "report").read_text()
    assert "## Between settings: each against loss=infonce (paired tests over queries, test NDCG@10)" in markdown
    assert "| loss=wasserstein | toy | 2 | 2 | " in markdown and "| loss=listnet | toy | 1 | 2 | " in markdown
    assert "## Against the base model" in markdown and "| toy vs base |" in markdown
    other = write_report(records, tmp_path / "other", reference="loss=listnet").read_text()
    assert "each against loss=listnet" in other and "| loss=infonce | toy | 2 | 1 | " in other


def test_the_default_reference_is_the_defaults_then_infonce_then_the_first_setting():
    assert choose_reference(["loss=a", "(defaults)", "loss=infonce"]) == "(defaults)"
    assert choose_reference(["loss=a", "loss=infonce"]) == "loss=infonce"
    assert choose_reference(["loss=b", "loss=a"]) == "loss=b"
    assert choose_reference(["loss=b", "loss=a"], "loss=a") == "loss=a"
    with pytest.raises(ValueError, match=r"'loss=c' is not a setting of these runs; they are: \['loss=b', 'loss=a'\]"):
        choose_reference(["loss=b", "loss=a"], "loss=c")


def test_report_py_refuses_an_unknown_reference_with_the_settings(sweep, tmp_path):
    records, _ = sweep
    sweep_dir = records[0].path.parent
    command = [sys.executable, "report.py", str(sweep_dir), "--output", str(tmp_path / "r"), "--reference", "loss=x"]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 2
    assert "--reference 'loss=x' is not a setting of these runs; they are: ['loss=wasserstein'," in finished.stderr
    assert not (tmp_path / "r").exists()

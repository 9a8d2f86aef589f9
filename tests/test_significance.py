"""Paired tests over queries: the t-test and its interval against scipy and a hand computation, the sign-flip test
against brute-force enumeration, and their use in comparison.md/.json and in report.py's section on the base model."""

import itertools
import json
import math
import random
import statistics
from pathlib import Path

import numpy as np
import pytest
import pytrec_eval
import yaml
from scipy import stats

from sycl.evaluation.metrics import METRICS, compute_metrics, per_query_metric
from sycl.evaluation.reports import comparison_table, write_comparison, write_run
from sycl.evaluation.significance import PairedTest, paired_test, sign_flip_p_value
from sycl.experiments import per_query
from sycl.experiments.against_base import settings_against_base
from sycl.experiments.report import write_report
from sycl.experiments.runs import read_runs
from tests.beir_fixtures import write_beir


def paired_values(n: int, shift: float, seed: int = 0) -> tuple[dict[str, float], dict[str, float]]:
    """Two systems' per-query values in [0, 1] on queries q0..q{n-1}; b is a plus ``shift`` plus noise."""
    rng = random.Random(seed)
    a = {f"q{i}": rng.random() for i in range(n)}
    b = {q: min(1.0, max(0.0, value + shift + rng.gauss(0, 0.1))) for q, value in a.items()}
    return a, b


@pytest.mark.parametrize("shift", [0.0, 0.03, 0.2])
def test_t_test_p_value_equals_scipy_ttest_rel_and_the_interval_a_hand_computation(shift):
    a, b = paired_values(40, shift)
    result = paired_test(a, b)
    queries = sorted(a)
    expected = stats.ttest_rel([b[q] for q in queries], [a[q] for q in queries])
    assert result.p_t == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-15)

    differences = [b[q] - a[q] for q in queries]
    mean = statistics.fmean(differences)
    half_width = stats.t.ppf(0.975, len(differences) - 1) * statistics.stdev(differences) / math.sqrt(40)
    assert result.n == 40 and result.mean_difference == pytest.approx(mean, abs=1e-15)
    assert (result.ci_low, result.ci_high) == pytest.approx((mean - half_width, mean + half_width), abs=1e-12)
    assert result.ci_low < result.mean_difference < result.ci_high
    low, high = expected.confidence_interval(0.95)
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), abs=1e-12)


def brute_force_sign_flip(differences: list[float]) -> float:
    """The share of all 2^n sign assignments whose |sum| reaches the observed |sum|, one by one."""
    observed = abs(sum(differences))
    reaching = sum(
        abs(sum(s * d for s, d in zip(signs, differences, strict=True))) >= observed
        for signs in itertools.product((1, -1), repeat=len(differences))
    )
    return reaching / 2 ** len(differences)


def test_sign_flip_p_value_equals_brute_force_enumeration_on_small_n():
    # Multiples of 1/8 add exactly in floating point, so ties (here many) are ties for both counts.
    for differences in ([0.125, 0.25, -0.125, 0.5, 0.25, 0.0, 0.375, -0.25], [0.5, 0.5, 0.5], [0.25, -0.25]):
        assert sign_flip_p_value(np.array(differences)) == brute_force_sign_flip(differences)
    # Queries ranked alike (difference 0) change no sum: 60 queries with 3 nonzero differences are counted
    # exactly. Here p = 1: no sign assignment brings |sum| below the observed 0.75 - 0.125 - 0.25.
    mostly_ties = [0.0] * 57 + [0.75, -0.125, -0.25]
    assert sign_flip_p_value(np.array(mostly_ties)) == brute_force_sign_flip(mostly_ties[57:]) == 1.0
    a, b = paired_values(12, 0.05, seed=3)  # 4096 assignments <= 10,000 flips: counted exactly
    differences = [b[q] - a[q] for q in sorted(a)]
    assert paired_test(a, b).p_randomization == pytest.approx(brute_force_sign_flip(differences), abs=1e-12)


def test_sampled_sign_flips_are_seeded_close_to_the_exact_value_and_never_zero():
    a, b = paired_values(16, 0.0, seed=2)
    differences = np.array([b[q] - a[q] for q in sorted(a)])
    exact = sign_flip_p_value(differences, flips=2**16)
    sampled = sign_flip_p_value(differences, flips=4000)
    assert 0.01 < exact < 0.99  # a p-value with room for error on either side
    assert abs(sampled - exact) < 4 * math.sqrt(exact * (1 - exact) / 4000)
    assert sign_flip_p_value(differences, flips=4000) == sampled
    assert paired_test(a, b) == paired_test(dict(reversed(list(a.items()))), b)  # dict order does not matter
    assert sign_flip_p_value(np.full(30, 0.2), flips=999) == 1 / 1000  # only the observed one reaches it


def test_equal_differences_give_a_point_interval_and_no_nan():
    same = {"q1": 0.5, "q2": 0.25, "q3": 1.0}
    result = paired_test(same, dict(same))
    assert result == PairedTest(3, 0.0, 0.0, 0.0, 1.0, 1.0)
    shifted = paired_test({"q1": 0.5, "q2": 0.25}, {"q1": 0.75, "q2": 0.5})
    assert (shifted.mean_difference, shifted.ci_low, shifted.ci_high, shifted.p_t) == (0.25, 0.25, 0.25, 0.0)
    assert shifted.p_randomization == 0.5  # of 4 assignments, all +/all - reach 0.5
    assert all(math.isfinite(value) for value in vars(shifted).values())


def test_different_queries_or_fewer_than_two_are_refused_with_the_counts():
    with pytest.raises(ValueError, match="a has 3, b has 2, 1 only in a and 0 only in b"):
        paired_test({"q1": 0.1, "q2": 0.2, "q3": 0.3}, {"q1": 0.1, "q2": 0.2})
    with pytest.raises(ValueError, match="at least 2 queries, got 1"):
        paired_test({"q1": 0.1}, {"q1": 0.3})


def toy_collection(folder: Path, queries: int = 12) -> dict[str, dict[str, int]]:
    """A BEIR folder whose queries each judge four passages 3/2/1/0; returns its qrels."""
    qrels = {f"q{i}": {f"q{i}-{level}": level for level in (3, 2, 1, 0)} for i in range(queries)}
    write_beir(
        folder,
        {q: f"query {q}" for q in qrels},
        {d: f"passage {d}" for judged in qrels.values() for d in judged},
        [(q, d, level) for q, judged in qrels.items() for d, level in judged.items()],
        split="test",
    )
    return qrels


def random_run(qrels: dict[str, dict[str, int]], seed: int) -> dict[str, dict[str, float]]:
    rng = random.Random(seed)
    return {q: {d: rng.random() for d in [*judged, "unjudged-1", "unjudged-2"]} for q, judged in qrels.items()}


def test_per_query_metric_gives_the_values_compute_metrics_averages(tmp_path):
    qrels = toy_collection(tmp_path / "toy")
    run = random_run(qrels, seed=1)
    means = compute_metrics(qrels, run)
    for metric in METRICS:
        values = per_query_metric(qrels, run, metric)
        assert math.fsum(values.values()) / len(values) == pytest.approx(means[metric], abs=1e-15)
    assert per_query.per_query_ndcg(qrels, run) == per_query_metric(qrels, run, "NDCG@10")
    with pytest.raises(ValueError, match="unknown metric 'nDCG@10'"):
        per_query_metric(qrels, run, "nDCG@10")


def test_comparison_table_and_json_carry_the_tests_and_no_test_for_the_mean(tmp_path):
    base = {"demo": dict.fromkeys(METRICS, 0.5), "cranfield": dict.fromkeys(METRICS, 0.25)}
    trained = {"demo": dict.fromkeys(METRICS, 0.625), "cranfield": dict.fromkeys(METRICS, 0.25)}
    tests = {
        "demo": PairedTest(51, 0.125, 0.0625, 0.1875, 0.0004, 0.0003),
        "cranfield": PairedTest(150, 0.0, -0.01, 0.01, 1.0, 1.0),
    }
    table = write_comparison(tmp_path, base, trained, tests)
    assert table == (tmp_path / "comparison.md").read_text()
    lines = table.splitlines()
    assert lines[:5] == [
        "| dataset | base NDCG@10 | trained NDCG@10 | difference | 95% CI | p (t-test) | n |",
        "|---|---:|---:|---:|---:|---:|---:|",
        "| demo | 0.5000 | 0.6250 | +0.1250 | [+0.0625, +0.1875] | <0.001* | 51 |",
        "| cranfield | 0.2500 | 0.2500 | +0.0000 | [-0.0100, +0.0100] | 1.000 | 150 |",
        "| **mean** | 0.3750 | 0.4375 | +0.0625 | - | - | - |",
    ]
    assert "trailing *" in lines[-1] and "not exchangeable" in lines[-1]
    records = json.loads((tmp_path / "comparison.json").read_text())
    assert records["demo"] == {
        "metric": "NDCG@10",
        "base": 0.5,
        "trained": 0.625,
        "difference": 0.125,
        "ci_low": 0.0625,
        "ci_high": 0.1875,
        "p_t": 0.0004,
        "p_randomization": 0.0003,
        "n": 51,
    }
    assert list(records) == ["demo", "cranfield"]
    # Without tests the table is the one it always was.
    assert (
        comparison_table(base, trained).splitlines()[0] == "| dataset | base NDCG@10 | trained NDCG@10 | difference |"
    )


def write_job(job: Path, data_dir: Path, overrides: list[str], qrels, run=None, base_run=None) -> None:
    """A finished train job's folder as report.py reads it: config with a benchmark, results and run files."""
    (job / ".hydra").mkdir(parents=True)
    config = {
        "paths": {"data_dir": str(data_dir), "beir_dir": "${paths.data_dir}/beir"},
        "benchmark": {"datasets": [{"name": "toy", "path": "${paths.data_dir}/toy", "split": "test"}]},
    }
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if run is not None:
        (job / "results.json").write_text(json.dumps({"toy": compute_metrics(qrels, run)}))
        (job / "results_base.json").write_text(json.dumps({"toy": compute_metrics(qrels, base_run)}))
        write_run(job, "toy", run)
        write_run(job, "toy", base_run, prefix="results_base", tag="base")


def ndcg_at_10(qrels, run) -> dict[str, float]:
    """Per-query nDCG@10 straight from pytrec_eval, as a reader of the run files would compute it."""
    return {
        q: values["ndcg_cut_10"]
        for q, values in pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(run).items()
    }


def test_report_tests_each_setting_averaged_over_seeds_against_the_base_model(tmp_path):
    data_dir = tmp_path / "data"
    qrels = toy_collection(data_dir / "toy", queries=12)
    base_run = random_run(qrels, seed=100)
    runs = {("loss=a", "1"): 1, ("loss=a", "2"): 2, ("loss=b", "1"): 3, ("loss=b", "2"): 4}
    sweep = tmp_path / "sweep"
    for index, ((loss, seed), run_seed) in enumerate(runs.items()):
        write_job(sweep / str(index), data_dir, [loss, f"seed={seed}"], qrels, random_run(qrels, run_seed), base_run)
    write_job(sweep / "4", data_dir, ["loss=b", "seed=3"], qrels)  # no results, no run files: not counted
    records, _ = read_runs([sweep])

    tests, notes = settings_against_base(records)
    assert [(t.setting, t.dataset, t.seeds) for t in tests] == [("loss=a", "toy", 2), ("loss=b", "toy", 2)]
    assert notes == []
    base = ndcg_at_10(qrels, base_run)
    for row, seeds in zip(tests, ([1, 2], [3, 4]), strict=True):
        per_seed = [ndcg_at_10(qrels, random_run(qrels, seed)) for seed in seeds]
        trained = {q: (per_seed[0][q] + per_seed[1][q]) / 2 for q in qrels}
        queries = sorted(qrels)
        expected = stats.ttest_rel([trained[q] for q in queries], [base[q] for q in queries])
        assert row.test.p_t == pytest.approx(expected.pvalue, rel=1e-6)
        assert row.test.n == 12 and row.base == pytest.approx(statistics.fmean(base.values()), abs=1e-6)
        assert row.trained - row.base == pytest.approx(row.test.mean_difference, abs=1e-12)

    markdown = write_report(records, tmp_path / "report").read_text()
    assert "## Against the base model (paired tests over queries, test NDCG@10)" in markdown
    assert "| loss=a | toy | 2 | " in markdown and "| loss=b | toy | 2 | " in markdown
    assert "| p (t-test) | p (randomization) | n |" in markdown


def test_report_notes_jobs_without_run_files_and_qrels_that_lost_queries(tmp_path):
    data_dir = tmp_path / "data"
    qrels = toy_collection(data_dir / "toy", queries=6)
    sweep = tmp_path / "sweep"
    for index, seed in enumerate((1, 2)):
        write_job(sweep / str(index), data_dir, [f"seed={seed}"], qrels, random_run(qrels, seed), random_run(qrels, 9))
    (sweep / "1" / "runs" / "results_base-toy.trec").unlink()
    toy_collection(data_dir / "toy", queries=4)  # the qrels judge 2 queries fewer than the runs hold
    tests, notes = settings_against_base(read_runs([sweep])[0])
    assert [(t.seeds, t.test.n) for t in tests] == [(1, 4)]
    assert notes == [
        "toy: left out of job(s) 1, which lack a run file",
        "toy: 2 queries of the run files are not in the qrels (edited since the runs?); "
        "the tests cover the judged ones",
    ]

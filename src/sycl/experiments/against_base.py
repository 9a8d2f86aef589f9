"""Each setting of a multirun against the base model: paired tests over queries, from the jobs' run files.

Every train job writes its trained model's run (``runs/results-<dataset>.trec``) and the base model's
(``runs/results_base-<dataset>.trec``) on the datasets of its config's ``benchmark``. Per setting and
dataset, a query's value is its metric averaged over the setting's seeds (``per_query.mean_over_seeds``),
tested against the base model's value on the same query (``sycl.evaluation.significance.paired_test``).
``per_query_values`` reads them once for this and for the tests between settings (``against_reference``).
"""

import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

import sycl.config  # noqa: F401  registers ${repo_root:}, which the jobs' saved configs use
from sycl.evaluation.benchmark import dataset_specs, load_qrels
from sycl.evaluation.datasets import DatasetSpec
from sycl.evaluation.metrics import per_query_metric
from sycl.evaluation.reports import run_file
from sycl.evaluation.significance import PairedTest, paired_test
from sycl.experiments.per_query import mean_over_seeds, read_trec_run
from sycl.experiments.runs import RunRecord

MODELS = ("results", "results_base")
"""The run-file prefixes of the trained and the base model (see ``sycl.training.run``)."""
Qrels = dict[str, dict[str, int]]
PerQueryValues = dict[tuple[str, str], dict[str, list[dict[str, float]]]]


@dataclass(frozen=True)
class SettingTest:
    """One setting on one dataset against the base model.

    ``base`` and ``trained`` are the means over the ``test.n`` queries of the values tested (the setting's
    averaged over its ``seeds`` jobs), so ``trained - base`` is ``test.mean_difference`` up to rounding.
    """

    setting: str
    dataset: str
    seeds: int
    base: float
    trained: float
    test: PairedTest


def benchmark_of(job: Path) -> tuple[list[DatasetSpec], str] | None:
    """The job's test datasets and BEIR folder, from its ``.hydra/config.yaml``; None when it has no benchmark.

    Paths resolve as they did in the job, ``${paths.data_dir}`` under this checkout (or ``$SYCL_ROOT``).
    """
    cfg = OmegaConf.load(job / ".hydra" / "config.yaml")
    if not cfg.get("benchmark"):
        return None
    return dataset_specs(OmegaConf.to_container(cfg.benchmark.datasets, resolve=True)), str(cfg.paths.beir_dir)


def settings_against_base(records: list[RunRecord], metric: str = "NDCG@10") -> tuple[list[SettingTest], list[str]]:
    """Per setting and dataset, the paired test of the setting (its finished seeds) against the base model.

    Returns the tests, and notes for a person: what was left out and why (see ``per_query_values``), and
    settings whose seeds' runs cannot be paired.
    """
    values, notes = per_query_values(records, metric)
    tests, test_notes = tests_against_base(values)
    return tests, notes + test_notes


def per_query_values(records: list[RunRecord], metric: str = "NDCG@10") -> tuple[PerQueryValues, list[str]]:
    """(setting, dataset) -> model (``MODELS``) -> one {query: metric} per finished job with both run files.

    Also returns notes for a person: what was left out and why (no run files, a config or qrels that cannot
    be read here), and qrels that no longer judge every query of a run (edited since the jobs ran: the
    values then cover the queries they still judge).
    """
    values: PerQueryValues = defaultdict(lambda: defaultdict(list))
    qrels_of: dict[tuple[str, str], Qrels | None] = {}
    left_out: dict[str, list[str]] = defaultdict(list)
    unjudged: dict[str, set[str]] = defaultdict(set)
    notes = []
    for record in records:
        if record.failure or not record.results:
            continue
        try:
            benchmark = benchmark_of(record.path)
        except (OmegaConfBaseException, OSError, TypeError, ValueError) as error:
            notes.append(f"{record.path.name}: .hydra/config.yaml gives no benchmark here ({error}); left out")
            continue
        for spec in benchmark[0] if benchmark else []:
            files = [run_file(record.path, spec.label, prefix) for prefix in MODELS]
            if not all(path.is_file() for path in files):
                left_out[spec.label].append(record.path.name)
                continue
            if (spec.path, spec.split) not in qrels_of:
                qrels_of[spec.path, spec.split] = readable_qrels(spec, benchmark[1], notes)
            qrels = qrels_of[spec.path, spec.split]
            if qrels is None:
                continue
            for prefix, path in zip(MODELS, files, strict=True):
                run = read_trec_run(path)
                unjudged[spec.label].update(set(run) - set(qrels))
                values[record.setting, spec.label][prefix].append(per_query_metric(qrels, run, metric))
    notes += [
        f"{dataset}: left out of job(s) {', '.join(jobs)}, which lack a run file" for dataset, jobs in left_out.items()
    ]
    notes += [
        f"{dataset}: {len(queries)} queries of the run files are not in the qrels (edited since the runs?); "
        "the tests cover the judged ones"
        for dataset, queries in unjudged.items()
        if queries
    ]
    return values, notes


def tests_against_base(values: PerQueryValues) -> tuple[list[SettingTest], list[str]]:
    """The paired test of each (setting, dataset) of ``per_query_values`` against the base model; notes
    name those that cannot be tested."""
    tests, notes = [], []
    for (setting, dataset), per_model in values.items():
        try:
            base, trained = (mean_over_seeds(per_model[prefix]) for prefix in ("results_base", "results"))
            test = paired_test(base, trained)
        except ValueError as error:
            notes.append(f"{setting} on {dataset}: no test: {error}")
            continue
        means = statistics.fmean(base.values()), statistics.fmean(trained.values())
        tests.append(SettingTest(setting, dataset, len(per_model["results"]), *means, test))
    return tests, notes


def readable_qrels(spec: DatasetSpec, beir_dir: str, notes: list[str]) -> Qrels | None:
    """``load_qrels`` without downloading; None, with a note, when the folder or its split is not here."""
    try:
        return load_qrels(spec, beir_dir, download=False)
    except FileNotFoundError as error:
        notes.append(f"{spec.label}: its qrels cannot be read here ({error}); no test")
        return None

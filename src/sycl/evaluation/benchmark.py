"""Evaluating an encoder (or BM25) on a list of datasets: the shared core of eval.py and train-then-test."""

import logging
from pathlib import Path

from sycl.evaluation.datasets import DatasetSpec, integer_qrels, load_split, split_files
from sycl.evaluation.evaluator import EvaluationSettings, Ranker, RetrievalEvaluator
from sycl.evaluation.metrics import Run, compute_metrics
from sycl.evaluation.reports import Average, Results, write_run, write_summary
from sycl.evaluation.sharding import Shards
from sycl.models.dual_encoder import DualEncoder

log = logging.getLogger(__name__)


def dataset_specs(entries, default_split: str = "test") -> list[DatasetSpec]:
    """Config entries -> specs: a string is a folder, BEIR name or ``hf://`` folder URI; a mapping has the fields of
    ``DatasetSpec`` (path, split, name, and corpus, queries, qrels files)."""
    specs = []
    for entry in entries:
        if isinstance(entry, str):
            specs.append(DatasetSpec(path=entry, split=default_split))
        else:
            specs.append(DatasetSpec(**{"split": default_split, **dict(entry)}))
    if not specs:
        raise ValueError("no dataset to evaluate: give datasets=[...] or a benchmark")
    return specs


def check_available(specs: list[DatasetSpec], beir_dir: str | Path, download: bool = True) -> None:
    """Fail before any encoding if a dataset folder, its corpus, its queries or its qrels split is missing.

    Every ``hf://`` file is fetched into the HF cache now (``split_files``), so a suite whose last file is not
    available offline fails in seconds, not after hours of encoding the datasets before it. Raises
    FileNotFoundError (``sycl.hub.HubFileUnavailable`` for a hub file) naming the dataset and what is missing.
    """
    for spec in specs:
        try:
            split_files(spec, beir_dir, download)
        except FileNotFoundError as error:
            raise type(error)(f"dataset {spec.label}: {error}") from None


def benchmark_average(entry, specs: list[DatasetSpec]) -> Average | None:
    """``benchmark.average`` ({name, datasets}) as an ``Average`` of the results table, or None when not set.

    Raises ValueError for an average without datasets or naming one twice. A named dataset that is not among
    ``specs`` (a ``datasets=[...]`` override) is logged: the table then has no such row, as its mean would be
    over other datasets than its name says.
    """
    if not entry:
        return None
    average = Average(str(entry["name"]), tuple(str(label) for label in entry["datasets"]))
    if not average.datasets or len(set(average.datasets)) < len(average.datasets):
        raise ValueError(f"benchmark.average {average.name!r} must name each of its datasets once: {average.datasets}")
    absent = [label for label in average.datasets if label not in {spec.label for spec in specs}]
    if absent:
        log.warning("%s is not shown: %s not evaluated here", average.name, ", ".join(absent))
    return average


def load_qrels(spec: DatasetSpec, beir_dir: str | Path, download: bool = True) -> dict[str, dict[str, int]]:
    """The graded qrels of ``spec``'s split as ``load_split`` reads them, without reading its corpus or queries.

    With a run that ``evaluate_datasets`` returned or wrote, they give the per-query values it averaged
    (``sycl.evaluation.metrics.per_query_metric``): a paired test's input.
    """
    return integer_qrels(split_files(spec, beir_dir, download).qrels)


def describe_ranker(ranker: DualEncoder | Ranker) -> str:
    """How the log names a ranker: an encoder by its folder or hub id, a lexical ranker by its settings."""
    return f"model {ranker.name_or_path}" if isinstance(ranker, DualEncoder) else ranker.description


def evaluate_datasets(
    ranker: DualEncoder | Ranker,
    specs: list[DatasetSpec],
    settings: EvaluationSettings,
    beir_dir: str | Path,
    download: bool = True,
    output_dir: str | Path | None = None,
    prefix: str = "results",
    tag: str = "sycl",
    model_label: str | None = None,
    average: Average | None = None,
    shards: Shards | None = None,
) -> tuple[Results, dict[str, Run]]:
    """Evaluate ``ranker`` (an encoder, or BM25) on every dataset, one at a time so only one corpus is in memory.

    With ``output_dir``, each dataset's run file, and results.json/.md and <prefix>_checks.json so far,
    are written as soon as it finishes (see ``reports``), so a failure on a later dataset keeps the
    results of the earlier ones; <prefix>_checks.json records the commit of every ``hf://`` file a dataset was
    read from, and results.md ends with ``average`` when given. ``model_label`` names the model in the log ("base
    model <path>"); by default ``describe_ranker`` does. The returned results hold metrics only.

    With ``shards`` (``sycl.evaluation.sharding``) every process takes part and returns the same results; only
    the main one downloads (the others wait, then read what it fetched), logs and writes files.
    """
    model_label = model_label or describe_ranker(ranker)
    main = shards is None or shards.is_main
    if main:
        check_available(specs, beir_dir, download)
    if shards:
        shards.barrier()
        download = download and main
    if not main:
        output_dir = None
    evaluator = RetrievalEvaluator(settings, shards)
    results: Results = {}
    runs: dict[str, Run] = {}
    checks: dict[str, dict] = {}
    for spec in specs:
        try:
            keep_text = shards.owns if shards else None
            split = load_split(spec, beir_dir, download, keep_text, progress=settings.progress and main)
            (log.info if main else log.debug)(
                "evaluating %s on %s (%s split: %d queries, %d passages)",
                model_label,
                spec.label,
                spec.split,
                len(split.queries),
                len(split.corpus),
            )
            run, decided = evaluator.rank(ranker, split)
            results[spec.label], runs[spec.label] = compute_metrics(split.qrels, run), run
        except Exception:
            if results and output_dir is not None:
                log.error("%s failed; the results of %s are in %s", spec.label, ", ".join(results), output_dir)
            raise
        # The upstream version of every hub file the figures were computed on.
        checks[spec.label] = {**split.checks, **decided, **({"hub_files": split.hub_files} if split.hub_files else {})}
        if output_dir is not None:
            write_run(output_dir, spec.label, run, prefix, tag)
            write_summary(output_dir, results, prefix, checks, average)
    return results, runs

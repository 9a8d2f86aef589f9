"""Evaluating an encoder (or BM25) on a list of datasets: the shared core of eval.py and train-then-test."""

import logging
from pathlib import Path

from sycl.data.layout import dataset_files
from sycl.evaluation.datasets import DatasetSpec, integer_qrels, load_split, resolve_folder
from sycl.evaluation.evaluator import EvaluationSettings, Ranker, RetrievalEvaluator
from sycl.evaluation.metrics import Run, compute_metrics
from sycl.evaluation.reports import Results, write_run, write_summary
from sycl.models.dual_encoder import DualEncoder

log = logging.getLogger(__name__)


def dataset_specs(entries, default_split: str = "test") -> list[DatasetSpec]:
    """Config entries -> specs: a string is a folder or BEIR name; a mapping has path, split and name."""
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
    """Fail before any encoding if a dataset folder, its corpus, its queries or its qrels split is missing."""
    for spec in specs:
        try:
            dataset_files(resolve_folder(spec.path, beir_dir, download), spec.split)
        except FileNotFoundError as error:
            raise FileNotFoundError(f"dataset {spec.label}: {error}") from None


def load_qrels(spec: DatasetSpec, beir_dir: str | Path, download: bool = True) -> dict[str, dict[str, int]]:
    """The graded qrels of ``spec``'s split as ``load_split`` reads them, without reading its corpus or queries.

    With a run that ``evaluate_datasets`` returned or wrote, they give the per-query values it averaged
    (``sycl.evaluation.metrics.per_query_metric``): a paired test's input.
    """
    return integer_qrels(dataset_files(resolve_folder(spec.path, beir_dir, download), spec.split).qrels)


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
) -> tuple[Results, dict[str, Run]]:
    """Evaluate ``ranker`` (an encoder, or BM25) on every dataset, one at a time so only one corpus is in memory.

    With ``output_dir``, each dataset's run file, and results.json/.md and <prefix>_checks.json so far,
    are written as soon as it finishes (see ``reports``), so a failure on a later dataset keeps the
    results of the earlier ones. ``model_label`` names the model in the log ("base model <path>"); by default
    ``describe_ranker`` does.
    """
    model_label = model_label or describe_ranker(ranker)
    check_available(specs, beir_dir, download)
    evaluator = RetrievalEvaluator(settings)
    results: Results = {}
    runs: dict[str, Run] = {}
    checks: dict[str, dict] = {}
    for spec in specs:
        try:
            split = load_split(spec, beir_dir, download)
            log.info(
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
        checks[spec.label] = {**split.checks, **decided}
        if output_dir is not None:
            write_run(output_dir, spec.label, run, prefix, tag)
            write_summary(output_dir, results, prefix, checks)
    return results, runs

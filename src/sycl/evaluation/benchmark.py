"""Evaluating an encoder on a list of datasets: the shared core of eval.py and train-then-test."""

import logging
from pathlib import Path

from sycl.evaluation.datasets import DatasetSpec, load_split, resolve_folder
from sycl.evaluation.evaluator import EvaluationSettings, RetrievalEvaluator
from sycl.evaluation.metrics import Run
from sycl.evaluation.reports import Results
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
    """Fail before any encoding if a dataset folder or its qrels split is missing."""
    for spec in specs:
        folder = resolve_folder(spec.path, beir_dir, download)
        for required in ("corpus.jsonl", "queries.jsonl", f"qrels/{spec.split}.tsv"):
            if not (folder / required).is_file():
                raise FileNotFoundError(f"dataset {spec.label}: {folder / required} does not exist")


def evaluate_datasets(
    encoder: DualEncoder,
    specs: list[DatasetSpec],
    settings: EvaluationSettings,
    beir_dir: str | Path,
    download: bool = True,
) -> tuple[Results, dict[str, Run]]:
    """Evaluate on every dataset, one at a time so only one corpus is in memory."""
    check_available(specs, beir_dir, download)
    evaluator = RetrievalEvaluator(settings)
    results: Results = {}
    runs: dict[str, Run] = {}
    for spec in specs:
        split = load_split(spec, beir_dir, download)
        log.info(
            "evaluating on %s (%s split: %d queries, %d passages)",
            spec.label,
            spec.split,
            len(split.queries),
            len(split.corpus),
        )
        results[spec.label], runs[spec.label] = evaluator.evaluate(encoder, split)
    return results, runs

"""Evaluation: BEIR-layout datasets, encoding, exact search, the embedding cache, metrics and reports."""

from sycl.evaluation.benchmark import dataset_specs, evaluate_datasets
from sycl.evaluation.datasets import DatasetSpec, load_split
from sycl.evaluation.evaluator import EvaluationSettings, RetrievalEvaluator
from sycl.evaluation.metrics import METRICS, compute_metrics

__all__ = [
    "METRICS",
    "DatasetSpec",
    "EvaluationSettings",
    "RetrievalEvaluator",
    "compute_metrics",
    "dataset_specs",
    "evaluate_datasets",
    "load_split",
]

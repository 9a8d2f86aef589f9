"""Training: the LightningModule, its schedule and callbacks."""

from sycl.training.best_checkpoint import BestCheckpoint
from sycl.training.callbacks import ExportEncoder
from sycl.training.gradcache import GradCacheRetrieverModule
from sycl.training.module import RetrieverModule
from sycl.training.validation import RetrievalValidation

__all__ = ["BestCheckpoint", "ExportEncoder", "GradCacheRetrieverModule", "RetrievalValidation", "RetrieverModule"]

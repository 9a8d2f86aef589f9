"""Training: the LightningModule, its schedule and callbacks."""

from sycl.training.callbacks import ExportEncoder
from sycl.training.gradcache import GradCacheRetrieverModule
from sycl.training.module import RetrieverModule
from sycl.training.validation import RetrievalValidation

__all__ = ["ExportEncoder", "GradCacheRetrieverModule", "RetrievalValidation", "RetrieverModule"]

"""Training: the LightningModule, its schedule and callbacks."""

from sycl.training.callbacks import ExportEncoder
from sycl.training.module import RetrieverModule

__all__ = ["ExportEncoder", "RetrieverModule"]

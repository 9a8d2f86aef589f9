"""Training data: BEIR-layout readers, sources and their merge, graded group sampling, batching."""

from sycl.data.datamodule import MultiLevelDataModule
from sycl.data.errors import DataFormatError
from sycl.data.sources import SourceSpec, load_sources

__all__ = ["DataFormatError", "MultiLevelDataModule", "SourceSpec", "load_sources"]

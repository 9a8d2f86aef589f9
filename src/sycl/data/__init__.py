"""Training data: readers of every standard layout, sources and their merge, graded group sampling, batching."""

from sycl.data.errors import DataFormatError
from sycl.data.sources import SourceSpec, load_sources

__all__ = ["DataFormatError", "MultiLevelDataModule", "SourceSpec", "load_sources"]


def __getattr__(name: str):
    # Imported on first use: the datamodule pulls in Lightning and torch, which readers of BEIR files
    # (generate.py, mine.py) do not need and should not wait for.
    if name == "MultiLevelDataModule":
        from sycl.data.datamodule import MultiLevelDataModule

        return MultiLevelDataModule
    raise AttributeError(f"module 'sycl.data' has no attribute {name!r}")

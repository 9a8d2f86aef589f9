"""SyCL: list-wise training of dense retrievers on synthetic multi-level relevance data."""

__version__ = "0.1.0"

"""Encoders: the dual encoder, its pooling and its tokenization."""

from sycl.models.dual_encoder import DualEncoder, EncoderSettings
from sycl.models.pooling import pool
from sycl.models.tokenization import QueryPassageTokenizer

__all__ = ["DualEncoder", "EncoderSettings", "QueryPassageTokenizer", "pool"]

"""Losses over grouped in-batch scores, each called as ``loss(scores [B, B*K], labels [B, K])``."""

from sycl.losses.base import GroupedScoresLoss, expand_group_labels
from sycl.losses.infonce import InfoNCELoss
from sycl.losses.wasserstein import WassersteinLoss

__all__ = ["GroupedScoresLoss", "InfoNCELoss", "WassersteinLoss", "expand_group_labels"]

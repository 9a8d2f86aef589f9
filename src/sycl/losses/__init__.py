"""Losses over grouped in-batch scores, each called as ``loss(scores [B, B*K], labels [B, K], column_mask=None)``."""

from sycl.losses.base import GradedListLoss, GroupedScoresLoss, duplicate_negative_mask, expand_group_labels
from sycl.losses.bce import GradedBCELoss
from sycl.losses.infonce import InfoNCELoss
from sycl.losses.listnet import ListNetLoss
from sycl.losses.ordinal_wasserstein import OrdinalWassersteinLoss
from sycl.losses.pairwise import LambdaLoss, RankNetLoss
from sycl.losses.wasserstein import WassersteinLoss

__all__ = [
    "GradedBCELoss",
    "GradedListLoss",
    "GroupedScoresLoss",
    "InfoNCELoss",
    "LambdaLoss",
    "ListNetLoss",
    "OrdinalWassersteinLoss",
    "RankNetLoss",
    "WassersteinLoss",
    "duplicate_negative_mask",
    "expand_group_labels",
]

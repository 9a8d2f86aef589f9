"""InfoNCE: the contrastive baseline."""

import torch
import torch.nn.functional as F

from sycl.losses.base import GroupedScoresLoss, masked_logits


class InfoNCELoss(GroupedScoresLoss):
    """Cross-entropy of ``scores / temperature`` against each query's first passage.

    The data must put the positive first in its group (binary mode does); labels are only used
    for their shape. Every other passage of the batch, in-group or in-batch, is a negative, except a
    column dropped by ``column_mask``, which leaves the softmax (score -inf).
    Reference: van den Oord et al., "Representation Learning with Contrastive Predictive Coding" (2018);
    as used for dense retrieval by Karpukhin et al., "Dense Passage Retrieval" (2020).
    """

    def __init__(self, temperature: float = 1.0):
        super().__init__()
        self.temperature = temperature

    def compute(self, scores: torch.Tensor, labels: torch.Tensor, column_mask: torch.Tensor) -> torch.Tensor:
        batch_size, group_size = labels.shape
        targets = torch.arange(batch_size, device=scores.device) * group_size
        return F.cross_entropy(masked_logits(scores / self.temperature, column_mask), targets)

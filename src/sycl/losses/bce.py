"""Pointwise binary cross-entropy on graded labels scaled to [0, 1]."""

import torch
import torch.nn.functional as F

from sycl.losses.base import GradedListLoss


class GradedBCELoss(GradedListLoss):
    """BCE of sigmoid(s / temperature) against y / max_label for every (query, passage) pair.

    The pointwise graded objective of BiXSE ("binary cross-entropy on soft graded labels"): each
    passage's sigmoid score is pushed towards its label scaled to [0, 1] (level 3 -> 1.0, level 2 ->
    0.67, ...). In-batch negatives are level 0 terms weighted by ``in_batch_weight``; the loss is the
    weighted mean over terms (a masked column has no term). ``max_label`` defaults to 3, the top of the TREC scale.
    """

    def __init__(
        self,
        temperature: float = 1.0,
        max_label: float = 3.0,
        in_batch_negatives: str = "label0",
        in_batch_weight: float = 1.0,
        label_temperature: float = 1.0,
    ):
        super().__init__(temperature, label_temperature, in_batch_negatives, in_batch_weight)
        self.max_label = max_label

    def compute(self, scores: torch.Tensor, labels: torch.Tensor, column_mask: torch.Tensor) -> torch.Tensor:
        candidate_scores, candidate_labels, in_batch, kept = self.candidates(scores, labels, column_mask)
        targets = (candidate_labels / self.max_label).clamp(0.0, 1.0)
        weights = self.term_weights(in_batch, kept, scores.dtype)
        terms = F.binary_cross_entropy_with_logits(candidate_scores / self.temperature, targets, reduction="none")
        return (terms * weights).sum() / weights.sum()

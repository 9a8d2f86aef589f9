"""A per-query, ordinal Wasserstein loss: moving probability mass across relevance levels costs their distance."""

import ot
import torch

from sycl.losses.base import GradedListLoss


class OrdinalWassersteinLoss(GradedListLoss):
    """Mean over queries of W1( softmax(s_i / temperature), target_i ) with ground cost |level_a - level_b|.

    Unlike the reference's Gaussian W2 (which compares the batch's *set* of lists), each query's
    prediction is compared with its own target, and the cost knows the labels are ordinal: mass put on
    a level-0 passage instead of a level-3 one costs 3, on a level-2 one costs 1. Since the cost
    depends on levels only, W1 between distributions over passages equals W1 between their
    push-forwards onto the sorted levels, which POT's ``wasserstein_1d`` computes exactly and
    differentiably (it equals ``ot.emd2`` with the |level_a - level_b| cost matrix over passages).

    In-batch negatives: with ``label0`` (default) they are level-0 passages. The default
    ``in_batch_weight=0`` gives them no *target* mass, so the target is softmax(y / label_temperature)
    over the query's own group, while predicted mass on another query's passages counts as level 0
    and is paid for by its distance to the target's levels. ``in_batch_weight=1`` gives them a
    level-0 passage's target mass, as the reference's targets do. A column dropped by ``column_mask``
    has neither predicted nor target mass, so it moves no mass: as if it were not in the row.
    """

    def __init__(
        self,
        temperature: float = 1.0,
        label_temperature: float = 1.0,
        in_batch_negatives: str = "label0",
        in_batch_weight: float = 0.0,
    ):
        super().__init__(temperature, label_temperature, in_batch_negatives, in_batch_weight)

    def compute(self, scores: torch.Tensor, labels: torch.Tensor, column_mask: torch.Tensor) -> torch.Tensor:
        candidate_scores, candidate_labels, in_batch, kept = self.candidates(scores, labels, column_mask)
        predicted = self.predicted_distribution(candidate_scores, kept)  # [B, N]
        target = self.target_distribution(candidate_labels, in_batch, kept)  # [B, N]
        levels = torch.unique(candidate_labels)  # [L], sorted
        on_level = (candidate_labels[:, :, None] == levels).to(scores.dtype)  # [B, N, L]
        predicted_levels = torch.einsum("bn,bnl->lb", predicted, on_level)  # [L, B]
        target_levels = torch.einsum("bn,bnl->lb", target, on_level)
        positions = levels[:, None].expand(-1, scores.shape[0]).contiguous()  # [L, B]
        distances = ot.wasserstein_1d(positions, positions, predicted_levels, target_levels, p=1, require_sort=False)
        return distances.mean()

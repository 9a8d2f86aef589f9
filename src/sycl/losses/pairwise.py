"""Pairwise losses: RankNet and the NDCG-weighted LambdaLoss.

Only a query's own passages can outrank another candidate (in-batch negatives all have label 0), so
pairs are formed as (own passage a, any candidate b) with label_a > label_b: tensors are [B, K, N],
not [B, N, N], which keeps memory at O(B^2 K^2) instead of O(B^3 K^2) with in-batch negatives.
"""

import torch
import torch.nn.functional as F

from sycl.losses.base import GradedListLoss, masked_logits, own_group_columns

WEIGHTINGS = ("ndcg_loss2", "lambdarank")


class PairwiseLoss(GradedListLoss):
    """Shared pair construction; subclasses weight the pairs."""

    def pairs(self, scores: torch.Tensor, labels: torch.Tensor, column_mask: torch.Tensor):
        """Returns candidate scores [B, N], labels [B, N], in-batch mask [B, N], kept-column mask [B, N],
        own-column index [B, K] and the pair costs log(1 + exp(-(s_a - s_b) / temperature)) with their
        mask label_a > label_b, [B, K, N]. A pair with a dropped column b is not in that mask."""
        candidate_scores, candidate_labels, in_batch, kept = self.candidates(scores, labels, column_mask)
        batch_size, group_size = labels.shape
        if self.in_batch_negatives == "exclude":
            own = torch.arange(group_size, device=scores.device).expand(batch_size, -1)
        else:
            own = own_group_columns(batch_size, group_size, scores.device)
        own_scores, own_labels = candidate_scores.gather(1, own), candidate_labels.gather(1, own)
        ordered = (own_labels[:, :, None] > candidate_labels[:, None, :]) & kept[:, None, :]
        costs = F.softplus(-(own_scores[:, :, None] - candidate_scores[:, None, :]) / self.temperature)
        return candidate_scores, candidate_labels, in_batch, kept, own, costs, ordered


class RankNetLoss(PairwiseLoss):
    """Pairwise logistic loss over every pair of candidates with different labels.

    Burges et al., "Learning to Rank using Gradient Descent" (ICML 2005). A pair with an in-batch
    negative (label 0) is weighted by ``in_batch_weight``; the loss is the weighted mean over pairs.
    """

    def compute(self, scores: torch.Tensor, labels: torch.Tensor, column_mask: torch.Tensor) -> torch.Tensor:
        _, _, in_batch, kept, _, costs, ordered = self.pairs(scores, labels, column_mask)
        pair_weights = ordered * self.term_weights(in_batch, kept, scores.dtype)[:, None, :]
        return (costs * pair_weights).sum() / pair_weights.sum().clamp_min(1e-12)


class LambdaLoss(PairwiseLoss):
    """NDCG-weighted pairwise logistic loss from the LambdaLoss framework.

    Wang et al., "The LambdaLoss Framework for Metric-Driven Learning to Rank" (CIKM 2018). Each pair
    (a, b) with label_a > label_b costs log2(1 + exp(-(s_a - s_b) / temperature)), weighted by
    |G_a - G_b| * delta, with gains G = (2^y - 1) / maxDCG and ranks from the current scores (no
    gradient through ranks). ``weighting``: ``ndcg_loss2`` uses the paper's NDCG-Loss2 delta
    |1/D(|r_a - r_b|) - 1/D(|r_a - r_b| + 1)|; ``lambdarank`` uses LambdaRank's |1/D(r_a) - 1/D(r_b)|
    (Burges, 2006), D(r) = log2(1 + r). The sum is averaged over queries.
    """

    def __init__(
        self,
        temperature: float = 1.0,
        weighting: str = "ndcg_loss2",
        label_temperature: float = 1.0,
        in_batch_negatives: str = "label0",
        in_batch_weight: float = 1.0,
    ):
        super().__init__(temperature, label_temperature, in_batch_negatives, in_batch_weight)
        if weighting not in WEIGHTINGS:
            raise ValueError(f"loss.weighting={weighting!r} is not one of {WEIGHTINGS}")
        self.weighting = weighting

    def compute(self, scores: torch.Tensor, labels: torch.Tensor, column_mask: torch.Tensor) -> torch.Tensor:
        candidate_scores, candidate_labels, in_batch, kept, own, costs, ordered = self.pairs(
            scores, labels, column_mask
        )
        with torch.no_grad():
            # A dropped column ranks below every kept one, so the kept columns' ranks are as without it.
            ranked = masked_logits(candidate_scores, kept)
            ranks = ranked.argsort(dim=1, descending=True).argsort(dim=1).to(scores.dtype) + 1  # 1-based
            gains = 2.0**candidate_labels - 1.0
            positions = torch.arange(1, gains.shape[1] + 1, device=gains.device, dtype=gains.dtype)
            ideal_dcg = (gains.sort(dim=1, descending=True).values / torch.log2(1.0 + positions)).sum(1, keepdim=True)
            gains = gains / ideal_dcg.clamp_min(1e-12)
            own_ranks, own_gains = ranks.gather(1, own), gains.gather(1, own)
            if self.weighting == "lambdarank":
                delta = (
                    1.0 / torch.log2(1.0 + own_ranks[:, :, None]) - 1.0 / torch.log2(1.0 + ranks[:, None, :])
                ).abs()
            else:
                distance = (own_ranks[:, :, None] - ranks[:, None, :]).abs()
                delta = (1.0 / torch.log2(1.0 + distance.clamp_min(1.0)) - 1.0 / torch.log2(2.0 + distance)).abs()
            weights = self.term_weights(in_batch, kept, scores.dtype)
            pair_weights = ordered * (own_gains[:, :, None] - gains[:, None, :]).abs() * delta * weights[:, None, :]
        return (costs / torch.log(scores.new_tensor(2.0)) * pair_weights).sum() / scores.shape[0]

"""Pairwise losses: RankNet and the NDCG-weighted LambdaLoss."""

import torch
import torch.nn.functional as F

from sycl.losses.base import GradedListLoss

WEIGHTINGS = ("ndcg_loss2", "lambdarank")


def ordered_pairs(labels: torch.Tensor) -> torch.Tensor:
    """[B, N, N] bool: pair (a, b) of a query's candidates with label_a > label_b."""
    return labels[:, :, None] > labels[:, None, :]


def pairwise_logistic(scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """[B, N, N] log(1 + exp(-(s_a - s_b) / temperature)): the RankNet cost of ranking a above b."""
    return F.softplus(-(scores[:, :, None] - scores[:, None, :]) / temperature)


class RankNetLoss(GradedListLoss):
    """Pairwise logistic loss over every pair of candidates with different labels.

    Burges et al., "Learning to Rank using Gradient Descent" (ICML 2005). A pair involving an in-batch
    negative (label 0) is weighted by ``in_batch_weight``; the loss is the weighted mean over pairs.
    """

    def compute(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        candidate_scores, candidate_labels, in_batch = self.candidates(scores, labels)
        weights = self.term_weights(in_batch, scores.dtype)
        pair_weights = ordered_pairs(candidate_labels) * weights[:, :, None] * weights[:, None, :]
        costs = pairwise_logistic(candidate_scores, self.temperature)
        return (costs * pair_weights).sum() / pair_weights.sum().clamp_min(1e-12)


class LambdaLoss(GradedListLoss):
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

    def compute(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        candidate_scores, candidate_labels, in_batch = self.candidates(scores, labels)
        with torch.no_grad():
            ranks = candidate_scores.argsort(dim=1, descending=True).argsort(dim=1).to(scores.dtype) + 1  # 1-based
            gains = 2.0**candidate_labels - 1.0
            positions = torch.arange(1, gains.shape[1] + 1, device=gains.device, dtype=gains.dtype)
            ideal_dcg = (gains.sort(dim=1, descending=True).values / torch.log2(1.0 + positions)).sum(1, keepdim=True)
            gains = gains / ideal_dcg.clamp_min(1e-12)
            if self.weighting == "lambdarank":
                discounts = 1.0 / torch.log2(1.0 + ranks)
                delta = (discounts[:, :, None] - discounts[:, None, :]).abs()
            else:
                distance = (ranks[:, :, None] - ranks[:, None, :]).abs()
                delta = (1.0 / torch.log2(1.0 + distance.clamp_min(1.0)) - 1.0 / torch.log2(2.0 + distance)).abs()
            weights = self.term_weights(in_batch, scores.dtype)
            pair_weights = (
                ordered_pairs(candidate_labels)
                * (gains[:, :, None] - gains[:, None, :]).abs()
                * delta
                * weights[:, :, None]
                * weights[:, None, :]
            )
        costs = pairwise_logistic(candidate_scores, self.temperature) / torch.log(scores.new_tensor(2.0))
        return (costs * pair_weights).sum() / scores.shape[0]

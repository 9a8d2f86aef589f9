"""ListNet: the KL divergence between the label and score distributions of each query."""

import torch

from sycl.losses.base import GradedListLoss, masked_logits


class ListNetLoss(GradedListLoss):
    """KL( softmax(y / label_temperature) || softmax(s / temperature) ) per query, averaged.

    The top-one-probability form of ListNet (Cao et al., "Learning to Rank: From Pairwise Approach to
    Listwise Approach", ICML 2007); Trove's ``kl`` loss. Unlike the Gaussian Wasserstein loss it pairs
    each query's predictions with *its own* targets. KL differs from ListNet's cross-entropy only by the
    target entropy, a constant, so gradients are the same and a perfect fit scores 0. A column dropped
    by ``column_mask`` leaves both softmaxes of its row.
    """

    def compute(self, scores: torch.Tensor, labels: torch.Tensor, column_mask: torch.Tensor) -> torch.Tensor:
        candidate_scores, candidate_labels, in_batch, kept = self.candidates(scores, labels, column_mask)
        target = self.target_distribution(candidate_labels, in_batch, kept)
        log_predicted = torch.log_softmax(masked_logits(candidate_scores / self.temperature, kept), dim=1)
        # A dropped column has target 0 and log-probability -inf; kl_div would compute 0 * -inf = nan there.
        log_predicted = log_predicted.masked_fill(~kept, 0.0)
        return torch.nn.functional.kl_div(log_predicted, target, reduction="batchmean")

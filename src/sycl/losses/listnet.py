"""ListNet: the KL divergence between the label and score distributions of each query."""

import torch

from sycl.losses.base import GradedListLoss


class ListNetLoss(GradedListLoss):
    """KL( softmax(y / label_temperature) || softmax(s / temperature) ) per query, averaged.

    The top-one-probability form of ListNet (Cao et al., "Learning to Rank: From Pairwise Approach to
    Listwise Approach", ICML 2007); Trove's ``kl`` loss. Unlike the Gaussian Wasserstein loss it pairs
    each query's predictions with *its own* targets. KL differs from ListNet's cross-entropy only by the
    target entropy, a constant, so gradients are the same and a perfect fit scores 0.
    """

    def compute(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        candidate_scores, candidate_labels, in_batch = self.candidates(scores, labels)
        target = self.target_distribution(candidate_labels, in_batch)
        log_predicted = torch.log_softmax(candidate_scores / self.temperature, dim=1)
        return torch.nn.functional.kl_div(log_predicted, target, reduction="batchmean")

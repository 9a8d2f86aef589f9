"""Shape handling shared by every loss over grouped in-batch scores."""

import torch
from torch import nn


def expand_group_labels(labels: torch.Tensor, num_columns: int) -> torch.Tensor:
    """Place each query's group labels on its own block; every in-batch negative gets label 0.

    labels: [B, K] graded labels of each query's own group.
    Returns Y: [B, num_columns] with Y[i, i*K:(i+1)*K] = labels[i] and zeros elsewhere.
    """
    batch_size, group_size = labels.shape
    expanded = labels.new_zeros(batch_size, num_columns)
    columns = torch.arange(batch_size, device=labels.device)[:, None] * group_size + torch.arange(
        group_size, device=labels.device
    )
    return expanded.scatter(1, columns, labels)


class GroupedScoresLoss(nn.Module):
    """Base of the losses called as ``loss(scores, labels)``.

    scores: [B, B*K] query-passage scores; query i's own group sits in columns i*K .. i*K+K-1,
        every other column is an in-batch negative.
    labels: [B, K] graded relevance of each query's own group.
    Subclasses implement ``compute(scores, labels)`` and return a scalar.
    """

    def forward(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if scores.dim() != 2 or labels.dim() != 2:
            raise ValueError(
                f"expected scores [B, B*K] and labels [B, K], got {tuple(scores.shape)} and {tuple(labels.shape)}"
            )
        batch_size, group_size = labels.shape
        if scores.shape != (batch_size, batch_size * group_size):
            raise ValueError(
                f"scores {tuple(scores.shape)} do not match labels {tuple(labels.shape)}: expected "
                f"[{batch_size}, {batch_size * group_size}]"
            )
        return self.compute(scores, labels.to(scores.dtype))

    def compute(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

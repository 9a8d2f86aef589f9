"""Shape handling and options shared by every loss over grouped in-batch scores."""

import math

import torch
from torch import nn

IN_BATCH_MODES = ("label0", "exclude")


def expand_group_labels(labels: torch.Tensor, num_columns: int) -> torch.Tensor:
    """Place each query's group labels on its own block; every in-batch negative gets label 0.

    labels: [B, K] graded labels of each query's own group.
    Returns Y: [B, num_columns] with Y[i, i*K:(i+1)*K] = labels[i] and zeros elsewhere.
    """
    batch_size, group_size = labels.shape
    expanded = labels.new_zeros(batch_size, num_columns)
    return expanded.scatter(1, own_group_columns(batch_size, group_size, labels.device), labels)


def own_group_columns(batch_size: int, group_size: int, device=None) -> torch.Tensor:
    """[B, K] column indices of each query's own group in the [B, B*K] score matrix."""
    return torch.arange(batch_size, device=device)[:, None] * group_size + torch.arange(group_size, device=device)


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


class GradedListLoss(GroupedScoresLoss):
    """Base of the graded losses, with the options the reference lacks.

    temperature: scores are divided by it. label_temperature: targets built from labels / label_temperature.
    in_batch_negatives: ``label0`` keeps every column, in-batch negatives labelled 0 (the reference);
        ``exclude`` keeps each query's own group only.
    in_batch_weight: with ``label0``, how much an in-batch negative counts relative to an in-group
        passage: the weight of its terms in pointwise and pairwise losses, the factor on its target mass
        in distribution losses (1 = the reference, 0 = no target mass, still penalised when predicted).
    """

    def __init__(
        self,
        temperature: float = 1.0,
        label_temperature: float = 1.0,
        in_batch_negatives: str = "label0",
        in_batch_weight: float = 1.0,
    ):
        super().__init__()
        if in_batch_negatives not in IN_BATCH_MODES:
            raise ValueError(f"loss.in_batch_negatives={in_batch_negatives!r} is not one of {IN_BATCH_MODES}")
        if in_batch_weight < 0:
            raise ValueError("loss.in_batch_weight must be >= 0")
        self.temperature, self.label_temperature = temperature, label_temperature
        self.in_batch_negatives, self.in_batch_weight = in_batch_negatives, in_batch_weight

    def candidates(self, scores: torch.Tensor, labels: torch.Tensor):
        """The columns each query is ranked over, by ``in_batch_negatives``.

        Returns scores [B, N], labels [B, N] and a bool mask [B, N] of in-batch negatives, with N = B*K
        (``label0``) or K (``exclude``).
        """
        batch_size, group_size = labels.shape
        if self.in_batch_negatives == "exclude":
            columns = own_group_columns(batch_size, group_size, scores.device)
            return scores.gather(1, columns), labels, torch.zeros_like(labels, dtype=torch.bool)
        expanded = expand_group_labels(labels, scores.shape[1])
        in_batch = torch.ones_like(expanded, dtype=torch.bool)
        in_batch.scatter_(1, own_group_columns(batch_size, group_size, scores.device), False)
        return scores, expanded, in_batch

    def term_weights(self, in_batch: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """[B, N] weight of each column's terms: 1 in the group, ``in_batch_weight`` for in-batch negatives."""
        return torch.where(
            in_batch,
            torch.full_like(in_batch, self.in_batch_weight, dtype=dtype),
            torch.ones_like(in_batch, dtype=dtype),
        )

    def target_distribution(self, labels: torch.Tensor, in_batch: torch.Tensor) -> torch.Tensor:
        """softmax(labels / label_temperature) row-wise, an in-batch negative's mass scaled by in_batch_weight."""
        logits = labels / self.label_temperature
        if self.in_batch_weight != 1.0:
            shift = math.log(self.in_batch_weight) if self.in_batch_weight > 0 else float("-inf")
            logits = logits + torch.where(in_batch, torch.full_like(logits, shift), torch.zeros_like(logits))
        return torch.softmax(logits, dim=1)

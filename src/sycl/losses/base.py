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


def duplicate_negative_mask(passage_ids: torch.Tensor, group_size: int) -> torch.Tensor:
    """The column mask that drops, from each query's row, in-batch negatives repeating one of its own passages.

    passage_ids: [B*K] integer identity of every passage of the batch, in column order (equal ids =
    identical passages). Returns column_mask: [B, B*K] bool, True where the column counts; a query's own
    columns are always True. Without it, the same passage (hence the same score) would be a graded member
    of the query's list and a label-0 negative in the same row.
    """
    own_ids = passage_ids.view(-1, group_size)  # [B, K]
    batch_size = own_ids.shape[0]
    repeats_own = (passage_ids[None, :, None] == own_ids[:, None, :]).any(dim=2)  # [B, B*K]
    own = torch.zeros_like(repeats_own).scatter_(1, own_group_columns(batch_size, group_size, own_ids.device), True)
    return own | ~repeats_own


class GroupedScoresLoss(nn.Module):
    """Base of the losses called as ``loss(scores, labels, column_mask=None)``.

    scores: [B, B*K] query-passage scores; query i's own group sits in columns i*K .. i*K+K-1,
        every other column is an in-batch negative.
    labels: [B, K] graded relevance of each query's own group.
    column_mask: optional [B, B*K] bool, False for a column that must not count in that query's row
        (an in-batch negative that duplicates one of the query's own passages, see
        ``duplicate_negative_mask``); it gets neither predicted nor target mass nor terms. A query's own
        columns must stay True. None keeps every column.
    Subclasses implement ``compute(scores, labels, column_mask)`` (the mask always given) and return a
    scalar. ``min_queries``: the fewest queries a batch needs for the loss to be defined.
    """

    min_queries = 1

    def forward(
        self, scores: torch.Tensor, labels: torch.Tensor, column_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
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
        if column_mask is None:
            column_mask = torch.ones_like(scores, dtype=torch.bool)
        elif column_mask.shape != scores.shape or column_mask.dtype != torch.bool:
            raise ValueError(
                f"column_mask must be a bool tensor shaped like scores {tuple(scores.shape)}, got "
                f"{column_mask.dtype} {tuple(column_mask.shape)}"
            )
        elif not column_mask.gather(1, own_group_columns(batch_size, group_size, scores.device)).all():
            raise ValueError("column_mask drops a column of a query's own group: only in-batch columns may be masked")
        return self.compute(scores, labels.to(scores.dtype), column_mask)

    def compute(self, scores: torch.Tensor, labels: torch.Tensor, column_mask: torch.Tensor) -> torch.Tensor:
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

    def candidates(self, scores: torch.Tensor, labels: torch.Tensor, column_mask: torch.Tensor):
        """The columns each query is ranked over, by ``in_batch_negatives``.

        Returns scores [B, N], labels [B, N], a bool mask [B, N] of in-batch negatives and a bool mask
        [B, N] of the columns that count (``column_mask``), with N = B*K (``label0``) or K (``exclude``).
        """
        batch_size, group_size = labels.shape
        if self.in_batch_negatives == "exclude":
            columns = own_group_columns(batch_size, group_size, scores.device)
            no_in_batch = torch.zeros_like(labels, dtype=torch.bool)
            return scores.gather(1, columns), labels, no_in_batch, ~no_in_batch
        expanded = expand_group_labels(labels, scores.shape[1])
        in_batch = torch.ones_like(expanded, dtype=torch.bool)
        in_batch.scatter_(1, own_group_columns(batch_size, group_size, scores.device), False)
        return scores, expanded, in_batch, column_mask

    def term_weights(self, in_batch: torch.Tensor, kept: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """[B, N] weight of each column's terms: 1 in the group, ``in_batch_weight`` for in-batch negatives,
        0 for a column that does not count (``kept`` False)."""
        weights = torch.where(
            in_batch,
            torch.full_like(in_batch, self.in_batch_weight, dtype=dtype),
            torch.ones_like(in_batch, dtype=dtype),
        )
        return weights * kept

    def predicted_distribution(self, scores: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
        """softmax(scores / temperature) row-wise over the kept columns; a dropped column gets exactly 0."""
        return torch.softmax(masked_logits(scores / self.temperature, kept), dim=1)

    def target_distribution(self, labels: torch.Tensor, in_batch: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
        """softmax(labels / label_temperature) row-wise over the kept columns, an in-batch negative's mass
        scaled by in_batch_weight; a dropped column gets exactly 0."""
        logits = labels / self.label_temperature
        if self.in_batch_weight != 1.0:
            shift = math.log(self.in_batch_weight) if self.in_batch_weight > 0 else float("-inf")
            logits = logits + torch.where(in_batch, torch.full_like(logits, shift), torch.zeros_like(logits))
        return torch.softmax(masked_logits(logits, kept), dim=1)


def masked_logits(logits: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """logits [B, N] with -inf where ``kept`` [B, N] is False, so a softmax gives those columns no mass.

    Every row keeps its own group, so no row is all -inf; the gradient reaching a dropped column is 0.
    """
    return logits.masked_fill(~kept, float("-inf"))

"""Anchoring training to the base model's scores, so that fine-tuning on a small synthetic set does not erase what
the base model already ranks well ("learning without forgetting", Li & Hoiem, ECCV 2016, applied to the in-batch
score matrix of a dual encoder)."""

import copy

import torch

from sycl.models.dual_encoder import DualEncoder
from sycl.models.tokenization import length_sorted_chunks


class ScoreAnchor:
    """A frozen copy of the encoder as training found it, and the divergence of new scores from its scores.

    Built before any checkpoint is loaded, so a resumed run anchors to the same base model. It is deliberately
    not an ``nn.Module`` attribute of the LightningModule: its weights stay out of checkpoints, the optimizer and
    DDP's gradient sync. Memory: one more copy of the encoder's weights, no optimizer state, no activations kept
    (its forward runs without a graph).
    """

    def __init__(self, encoder: DualEncoder, temperature: float):
        if temperature <= 0:
            raise ValueError(f"module.anchor_temperature must be > 0, got {temperature}")
        self.base = copy.deepcopy(encoder).eval().requires_grad_(False)
        self.temperature = temperature

    def to(self, device: torch.device) -> None:
        self.base.to(device)

    @torch.no_grad()
    def embed(self, batch: dict, chunk_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The base model's query [b, H] and passage [b*K, H] embeddings of ``batch``, in chunks of ``chunk_size``
        inputs when given (GradCache's batches can be larger than one forward fits)."""
        return (
            self._encode(self.base.encode_queries, batch["query"], chunk_size),
            self._encode(self.base.encode_passages, batch["passages"], chunk_size),
        )

    @staticmethod
    def _encode(encode, inputs: dict, chunk_size: int | None) -> torch.Tensor:
        if not chunk_size or chunk_size >= inputs["input_ids"].shape[0]:
            return encode(**inputs)
        chunks = length_sorted_chunks(inputs, chunk_size)
        rows = torch.cat([rows for rows, _ in chunks])
        return torch.cat([encode(**chunk) for _, chunk in chunks])[rows.argsort()]

    def divergence(
        self, scores: torch.Tensor, base_scores: torch.Tensor, column_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """Mean over queries of KL(softmax(base_scores_i / t) || softmax(scores_i / t)), t = ``temperature``.

        scores, base_scores: [B, N] scores of the same queries and passages by the trained and the base model;
        column_mask: [B, N] bool or None, False for a column left out of row i (as in the losses). Returns a
        scalar >= 0 (nats), 0 exactly when every row's distribution equals the base model's.
        """
        if column_mask is None:
            column_mask = torch.ones_like(scores, dtype=torch.bool)
        logits = (scores.float() / self.temperature).masked_fill(~column_mask, float("-inf"))
        base_logits = (base_scores.float() / self.temperature).masked_fill(~column_mask, float("-inf"))
        log_p, base_log_p = logits.log_softmax(dim=1), base_logits.log_softmax(dim=1)
        # Masked columns have zero mass on both sides; where() keeps their 0 * (-inf - -inf) out of the sum.
        terms = torch.where(column_mask, base_log_p.exp() * (base_log_p - log_p), torch.zeros_like(log_p))
        return terms.sum(dim=1).mean()

"""Batches graded groups into padded token tensors."""

import torch

from sycl.models.tokenization import QueryPassageTokenizer


class GroupCollator:
    """Turns B dataset items into model inputs; runs inside DataLoader workers.

    Returns {"query": {input_ids, attention_mask: [B, Lq]}, "passages": {...: [B*K, Lp]},
    "labels": [B, K] float, "query_ids": [B] str}; Lq and Lp are the longest in the batch, capped at
    the model's max lengths (no padding to max length).
    """

    def __init__(self, tokenization: QueryPassageTokenizer):
        self.tokenization = tokenization

    def __call__(self, items: list[dict]) -> dict:
        return {
            "query": self.tokenization.queries([item["query"] for item in items]),
            "passages": self.tokenization.passages([text for item in items for text in item["passages"]]),
            "labels": torch.tensor([item["labels"] for item in items], dtype=torch.float32),
            "query_ids": [item["query_id"] for item in items],
        }

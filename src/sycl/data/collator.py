"""Batches graded groups into padded token tensors."""

import torch

from sycl.models.tokenization import QueryPassageTokenizer, token_fingerprints


class GroupCollator:
    """Turns B dataset items into model inputs; runs inside DataLoader workers.

    Returns {"query": {input_ids, attention_mask: [B, Lq]}, "passages": {...: [B*K, Lp]},
    "labels": [B, K] float, "query_ids": [B] str, "passage_ids": [B*K] int64, "valid": [B] bool}; Lq and
    Lp are the longest in the batch, capped at the model's max lengths (no padding to max length).
    ``passage_ids`` identifies each passage by its tokens, the same in every process (see
    ``token_fingerprints``). ``valid`` is False for an item that only pads this device's share of a
    validation batch (an item's optional "valid" field, see ``PaddedShareDataset``); the module drops it.
    """

    def __init__(self, tokenization: QueryPassageTokenizer):
        self.tokenization = tokenization

    def __call__(self, items: list[dict]) -> dict:
        passages = self.tokenization.passages([text for item in items for text in item["passages"]])
        return {
            "query": self.tokenization.queries([item["query"] for item in items]),
            "passages": passages,
            "labels": torch.tensor([item["labels"] for item in items], dtype=torch.float32),
            "query_ids": [item["query_id"] for item in items],
            "passage_ids": token_fingerprints(passages),
            "valid": torch.tensor([item.get("valid", True) for item in items], dtype=torch.bool),
        }

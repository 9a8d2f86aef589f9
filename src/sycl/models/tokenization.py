"""Turning query and passage texts into padded token batches, with the model's prefixes and limits."""

import hashlib
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase


@dataclass
class QueryPassageTokenizer:
    """Tokenizes queries and passages with their own prefix and max length, padding to the batch's longest.

    Kept separate from the encoder so DataLoader workers can tokenize without holding model weights.
    """

    tokenizer: PreTrainedTokenizerBase
    query_max_length: int = 256
    passage_max_length: int = 256
    query_prefix: str = ""
    passage_prefix: str = ""

    def queries(self, texts: list[str]) -> dict:
        """Returns input_ids / attention_mask tensors of shape [len(texts), longest <= query_max_length]."""
        return self._tokenize([self.query_prefix + t for t in texts], self.query_max_length)

    def passages(self, texts: list[str]) -> dict:
        """Returns input_ids / attention_mask tensors of shape [len(texts), longest <= passage_max_length]."""
        return self._tokenize([self.passage_prefix + t for t in texts], self.passage_max_length)

    def _tokenize(self, texts: list[str], max_length: int) -> dict:
        # Only ids and mask: every tower runs with zero token types, as sentence-transformers does for one segment.
        encoded = self.tokenizer(
            texts,
            padding="longest",
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
            return_token_type_ids=False,
        )
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}


def token_fingerprints(inputs: dict) -> torch.Tensor:
    """[N] int64 identity of each text of a padded batch: a hash of its token ids, padding excluded.

    inputs: input_ids / attention_mask [N, L]. Texts that the model sees as the same tokens (after prefix
    and truncation) get the same id, in every process: blake2b, not Python's per-process salted ``hash``,
    so ids all-gathered from several devices compare. 64 bits make a collision in a batch negligible.
    """
    fingerprints = []
    for ids, mask in zip(inputs["input_ids"], inputs["attention_mask"].bool(), strict=True):
        digest = hashlib.blake2b(ids[mask].numpy().tobytes(), digest_size=8).digest()
        fingerprints.append(int.from_bytes(digest, "little", signed=True))
    return torch.tensor(fingerprints, dtype=torch.long)


def length_sorted_chunks(inputs: dict, chunk_size: int) -> list[tuple[torch.Tensor, dict]]:
    """Split a padded batch into chunks of similar length, each cut to its own longest text.

    inputs: input_ids / attention_mask [N, L]. Returns (row indices, chunk inputs [n, l <= L]) pairs.
    Sorting by length first means short texts are not padded to the batch's longest.
    """
    lengths = inputs["attention_mask"].sum(dim=1)
    order = lengths.argsort(descending=True)
    chunks = []
    for start in range(0, order.shape[0], chunk_size):
        rows = order[start : start + chunk_size]
        width = int(lengths[rows].max())
        chunks.append((rows, {k: v[rows, :width] for k, v in inputs.items()}))
    return chunks

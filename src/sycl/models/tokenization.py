"""Turning query and passage texts into padded token batches, with the model's prefixes and limits."""

import hashlib
from dataclasses import dataclass

import torch
from tokenizers import processors
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

    inputs: input_ids / attention_mask [N, L], padded on the right or (decoder embedders) on the left. Returns
    (row indices, chunk inputs [n, l <= L]) pairs. Sorting by length first means short texts are not padded to
    the batch's longest. The cut keeps the real tokens: the first l columns, or the last l when left-padded.
    """
    lengths = inputs["attention_mask"].sum(dim=1)
    order = lengths.argsort(descending=True)
    left = is_left_padded(inputs["attention_mask"])
    chunks = []
    for start in range(0, order.shape[0], chunk_size):
        rows = order[start : start + chunk_size]
        width = int(lengths[rows].max())
        kept = slice(-width, None) if left else slice(None, width)
        chunks.append((rows, {k: v[rows, kept] for k, v in inputs.items()}))
    return chunks


def is_left_padded(attention_mask: torch.Tensor) -> bool:
    """True when every text of the batch ([N, L] mask) ends in the last column, i.e. padding sits on the left.

    A batch without any padding counts as left-padded; either cut of it is then the same.
    """
    return bool(attention_mask[:, -1].all())


def prepare_tokenizer(
    tokenizer: PreTrainedTokenizerBase, append_eos: bool = False, padding_side: str | None = None
) -> None:
    """Set a tokenizer up for the encoder's pooling: padding side, a pad token, an EOS token closing every text.

    ``padding_side``: "left" or "right"; None keeps the tokenizer's own. A tokenizer without a pad token (most
    decoders) pads with its EOS token: padding is masked out, so which id it has does not matter.
    ``append_eos``: the EOS token becomes part of the tokenizer's post-processor, like BERT's [SEP], rather than
    being added by this project's code. So it comes after truncation (a text cut at max length still ends with it),
    and the tokenizer saved with an export appends it too, for ``AutoTokenizer`` and sentence-transformers alike.
    Last-token pooling then reads the hidden state of the EOS token, as decoder embedders are trained to (E5-Mistral,
    Wang et al. 2024, arXiv 2401.00368; Qwen3-Embedding, Zhang et al. 2025, arXiv 2506.05176). A tokenizer that
    already ends texts with its EOS token is left as it is.
    Raises ValueError when a needed EOS token is missing, or ``append_eos`` meets a tokenizer without a Rust backend.
    """
    if padding_side is not None:
        tokenizer.padding_side = padding_side
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"tokenizer {tokenizer.name_or_path} has neither a pad nor an EOS token to pad with")
        tokenizer.pad_token = tokenizer.eos_token
    if not append_eos:
        return
    if tokenizer.eos_token is None:
        raise ValueError(f"model.append_eos=true, but tokenizer {tokenizer.name_or_path} has no EOS token")
    if tokenizer("a")["input_ids"][-1] == tokenizer.eos_token_id:
        return
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ValueError(
            f"model.append_eos=true needs a fast (Rust) tokenizer; {type(tokenizer).__name__} has no post-processor"
        )
    eos = tokenizer.eos_token
    appended = processors.TemplateProcessing(
        single=f"$A {eos}", pair=f"$A {eos} $B:1 {eos}:1", special_tokens=[(eos, tokenizer.eos_token_id)]
    )
    existing = backend.post_processor
    backend.post_processor = appended if existing is None else processors.Sequence([existing, appended])

"""Optional check that an embedding model ranks each query's generated passages in level order.

Each passage is scored against its query with a dual encoder (the bundled MiniLM by default). Per
query, ``agreement`` is Kendall's tau between levels and scores over the pairs of passages with
different levels: 1 when the scores follow the levels exactly, -1 when exactly reversed. A query
with agreement below ``min_agreement`` is flagged (reported), and with ``drop=True`` left out of the
output. On the hand-written demo lists MiniLM gives tau >= 0 for all 120 queries (0 for 14 of them):
level 0 passages that reuse the query's words often outscore levels 1 and 2, so the default flags
only lists that are more reversed than ordered.
"""

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from sycl.generation.work import JournalPassage


@dataclass
class ConsistencyFilter:
    """Settings of the filter (``consistency`` in conf/generate.yaml); the model loads on first use."""

    enabled: bool = False
    drop: bool = False
    model: str = ""
    pooling: str = "mean"
    normalize: bool = True
    max_length: int = 256
    min_agreement: float = 0.0
    batch_size: int = 64
    device: str = "cpu"
    _encoder_model: object = field(default=None, init=False, repr=False)

    def agreements(self, queries: dict[str, str], passages: Iterable[JournalPassage]) -> dict[str, float]:
        """{query id: agreement} for every query that has passages; passages are scored in batches."""
        scored: dict[str, list[tuple[int, float]]] = {}
        batch: list[JournalPassage] = []
        for passage in passages:
            batch.append(passage)
            if len(batch) == self.batch_size:
                self._score(queries, batch, scored)
                batch = []
        if batch:
            self._score(queries, batch, scored)
        return {query_id: level_agreement(pairs) for query_id, pairs in scored.items()}

    def _score(self, queries: dict[str, str], batch: list[JournalPassage], scored: dict) -> None:
        import torch

        encoder = self._encoder()
        query_tokens = encoder.tokenization.queries([queries[p.query_id] for p in batch])
        passage_tokens = encoder.tokenization.passages([p.text for p in batch])
        with torch.inference_mode():
            query_vectors = encoder.encode_queries(**{k: v.to(self.device) for k, v in query_tokens.items()})
            passage_vectors = encoder.encode_passages(**{k: v.to(self.device) for k, v in passage_tokens.items()})
        for passage, score in zip(batch, (query_vectors * passage_vectors).sum(-1).tolist(), strict=True):
            scored.setdefault(passage.query_id, []).append((passage.level, score))

    def _encoder(self):
        if self._encoder_model is None:
            from sycl.models import DualEncoder

            self._encoder_model = DualEncoder.from_pretrained(
                self.model,
                pooling=self.pooling,
                normalize=self.normalize,
                query_max_length=self.max_length,
                passage_max_length=self.max_length,
            ).to(self.device)
            self._encoder_model.eval()
        return self._encoder_model


def level_agreement(scored: list[tuple[int, float]]) -> float:
    """Kendall's tau between levels and scores over passage pairs of different levels (1.0 if none)."""
    concordant = discordant = 0
    for (level_a, score_a), (level_b, score_b) in itertools.combinations(scored, 2):
        if level_a == level_b:
            continue
        if (level_a - level_b) * (score_a - score_b) > 0:
            concordant += 1
        else:
            discordant += 1
    pairs = concordant + discordant
    return (concordant - discordant) / pairs if pairs else 1.0

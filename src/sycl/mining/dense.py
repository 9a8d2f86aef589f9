"""Dense ranking with a trained encoder, through the evaluation code (``encode_texts``, ``exact_search``)."""

import logging
from collections.abc import Iterator
from pathlib import Path

import torch
from tqdm.auto import tqdm

from sycl.evaluation.encoding import encode_texts
from sycl.evaluation.search import exact_search
from sycl.mining.corpus import iter_corpus_chunks
from sycl.mining.negatives import Hit
from sycl.models.dual_encoder import DualEncoder

log = logging.getLogger(__name__)


class DenseMiner:
    """Exact top-k by dot product, the corpus read and encoded ``corpus_chunk_size`` passages at a time.

    Memory beyond the corpus ids: query embeddings [Q, H], one chunk's passage embeddings [C, H] and the
    running top-k, [Q, k] scores and indices (12 bytes per entry: 6 GB for 500k queries at k=1000, about
    three times that while a chunk is merged in). Search runs on the CPU, as in evaluation.

    Empty passages (neither title nor text; FiQA has some) are left out, and counted in the log: as negatives
    they teach nothing, and BM25, which needs a shared term, never ranks them, so both miners mine the same corpus.
    """

    name = "dense"

    def __init__(
        self,
        encoder: DualEncoder,
        batch_size: int = 128,
        bf16: bool = False,
        device: str = "auto",
        corpus_chunk_size: int = 100_000,
        progress: bool = True,
    ):
        self.encoder = encoder
        self.batch_size, self.bf16, self.device = batch_size, bf16, device
        self.corpus_chunk_size, self.progress = corpus_chunk_size, progress

    def encode(self, texts: list[str], kind: str) -> torch.Tensor:
        """[len(texts), H] float32 embeddings on the CPU."""
        return encode_texts(self.encoder, texts, kind, self.batch_size, self.bf16, self.device, progress=False)

    def rank(self, corpus_path: str | Path, queries: dict[str, str], top_k: int) -> Iterator[tuple[str, list[Hit]]]:
        """Yield (query id, hits best first, at most ``top_k``) for every query, in the order of ``queries``.

        Hits are non-empty passages only (see the class); ``top_k`` counts those.
        """
        query_ids = list(queries)
        query_embeddings = self.encode([queries[q] for q in query_ids], "query")  # [Q, H]
        best_scores = torch.empty(len(query_ids), 0)  # [Q, k], the running top-k over the chunks seen so far
        best_indices = torch.empty(len(query_ids), 0, dtype=torch.long)
        corpus_ids: list[str] = []  # of the passages ranked: the non-empty ones
        empty = 0
        with tqdm(desc="dense top-k", unit="passage", disable=not self.progress) as bar:
            for chunk_ids, chunk_texts in iter_corpus_chunks(corpus_path, self.corpus_chunk_size):
                bar.update(len(chunk_ids))
                kept = [
                    (corpus_id, text) for corpus_id, text in zip(chunk_ids, chunk_texts, strict=True) if text.strip()
                ]
                empty += len(chunk_ids) - len(kept)
                if not kept:
                    continue
                ids, texts = map(list, zip(*kept, strict=True))
                scores, indices = exact_search(query_embeddings, self.encode(texts, "passage"), top_k)
                merged_scores = torch.cat([best_scores, scores], dim=1)
                merged_indices = torch.cat([best_indices, indices + len(corpus_ids)], dim=1)
                best_scores, position = merged_scores.topk(min(top_k, merged_scores.shape[1]), dim=1)
                best_indices = merged_indices.gather(1, position)
                corpus_ids += ids
        if empty:
            log.info(
                "%s: left out %d empty passages (neither title nor text) of %d; ranked the other %d",
                corpus_path,
                empty,
                empty + len(corpus_ids),
                len(corpus_ids),
            )
        for row, query_id in enumerate(query_ids):
            hits = zip(best_indices[row].tolist(), best_scores[row].tolist(), strict=True)
            yield query_id, [(corpus_ids[index], score) for index, score in hits]

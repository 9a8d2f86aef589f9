"""Encode, search and score one or more retrieval splits with a dual encoder."""

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from sycl.evaluation.cache import EmbeddingCache, model_fingerprint
from sycl.evaluation.datasets import SELF_HIT_DATASETS, RetrievalSplit
from sycl.evaluation.encoding import encode_texts
from sycl.evaluation.metrics import Run, compute_metrics, drop_self_hits
from sycl.evaluation.search import exact_search, faiss_search
from sycl.models.dual_encoder import DualEncoder

log = logging.getLogger(__name__)


@dataclass
class EvaluationSettings:
    """How to evaluate; the fields of ``conf/eval.yaml``'s ``evaluation`` node."""

    batch_size: int = 64
    top_k: int = 1000
    corpus_chunk_size: int = 50_000
    bf16: bool = False
    device: str = "auto"
    backend: str = "exact"
    cache_dir: str | None = None
    # "auto": drop a query's own id from its results on ArguAna and Quora only.
    remove_self_hits: str | bool = "auto"
    progress: bool = True

    def __post_init__(self):
        if self.backend not in ("exact", "faiss"):
            raise ValueError(f"evaluation.backend={self.backend!r} is not one of ('exact', 'faiss')")


class RetrievalEvaluator:
    """Ranks each split's whole corpus for each of its queries and computes the graded metrics."""

    def __init__(self, settings: EvaluationSettings | None = None):
        self.settings = settings or EvaluationSettings()
        self.cache = EmbeddingCache(self.settings.cache_dir) if self.settings.cache_dir else None

    def evaluate(self, encoder: DualEncoder, split: RetrievalSplit) -> tuple[dict[str, float], Run]:
        """Returns ({metric: value}, run) for one split."""
        corpus_ids = list(split.corpus)
        corpus_embeddings = self.corpus_embeddings(encoder, split, corpus_ids)
        query_ids = list(split.queries)
        query_embeddings = self.encode(encoder, [split.queries[q] for q in query_ids], "query")
        search = faiss_search if self.settings.backend == "faiss" else exact_search
        options = {} if self.settings.backend == "faiss" else {"corpus_chunk_size": self.settings.corpus_chunk_size}
        # One extra hit so that dropping a self-hit still leaves top_k results.
        scores, indices = search(query_embeddings, corpus_embeddings, self.settings.top_k + 1, **options)
        run = {
            query_id: {
                corpus_ids[j]: float(s) for s, j in zip(scores[row].tolist(), indices[row].tolist(), strict=True)
            }
            for row, query_id in enumerate(query_ids)
        }
        if self.removes_self_hits(split.name):
            run = drop_self_hits(run)
        run = {q: dict(sorted(hits.items(), key=lambda h: -h[1])[: self.settings.top_k]) for q, hits in run.items()}
        return compute_metrics(split.qrels, run), run

    def corpus_embeddings(self, encoder: DualEncoder, split: RetrievalSplit, corpus_ids: list[str]) -> torch.Tensor:
        key = None
        if self.cache is not None:
            key = EmbeddingCache.key(model_fingerprint(encoder), split.corpus_file, self.settings.bf16)
            cached = self.cache.load(key, corpus_ids)
            if cached is not None:
                return cached
        embeddings = self.encode(encoder, [split.corpus[c] for c in corpus_ids], "passage")
        if self.cache is not None:
            self.cache.save(key, corpus_ids, embeddings)
        return embeddings

    def encode(self, encoder: DualEncoder, texts: list[str], kind: str) -> torch.Tensor:
        s = self.settings
        return encode_texts(encoder, texts, kind, s.batch_size, s.bf16, s.device, s.progress)

    def removes_self_hits(self, dataset_name: str) -> bool:
        if self.settings.remove_self_hits == "auto":
            return Path(dataset_name).name.lower() in SELF_HIT_DATASETS
        return bool(self.settings.remove_self_hits)

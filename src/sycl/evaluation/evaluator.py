"""Rank and score retrieval splits with a dual encoder (encode, search) or a lexical ranker (BM25)."""

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from sycl.data.text_store import OffsetTexts
from sycl.evaluation.cache import EmbeddingCache, model_fingerprint
from sycl.evaluation.datasets import RetrievalSplit
from sycl.evaluation.encoding import encode_texts
from sycl.evaluation.metrics import Run, compute_metrics, trec_order
from sycl.evaluation.search import exact_search, faiss_search, search_past_ties
from sycl.evaluation.self_hits import RULES, self_hit_queries, without_self_hit
from sycl.evaluation.sharding import Shards
from sycl.evaluation.store import STORE_DTYPES, write_entry
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
    # auto | true | false: whether a query's own passage is dropped from its ranking (sycl.evaluation.self_hits).
    remove_self_hits: str | bool = "auto"
    progress: bool = True
    # How corpus embeddings are kept on disk (sycl.evaluation.store): float32, or float16 for half the space.
    embedding_dtype: str = "float32"
    # Processes per node and nodes to spread the corpus over (sycl.evaluation.sharding); 1 x 1 is one process.
    devices: int = 1
    num_nodes: int = 1
    accelerator: str = "auto"

    def __post_init__(self):
        if self.backend not in ("exact", "faiss"):
            raise ValueError(f"evaluation.backend={self.backend!r} is not one of ('exact', 'faiss')")
        if self.embedding_dtype not in STORE_DTYPES:
            raise ValueError(f"evaluation.embedding_dtype={self.embedding_dtype!r} is not one of {tuple(STORE_DTYPES)}")
        if self.remove_self_hits not in RULES:
            raise ValueError(f"evaluation.remove_self_hits={self.remove_self_hits!r} is not one of auto, true, false")


class Ranker(Protocol):
    """A ranker other than a ``DualEncoder``, e.g. ``sycl.evaluation.lexical.BM25Retriever``."""

    name: str  # the tag of its run files
    description: str  # its settings, for the log and results_checks.json

    def hits(self, split: RetrievalSplit, depth: int) -> dict[str, list[tuple[str, float]]]:
        """{query id: [(corpus id, score), ...]}, with every passage scoring as high as each query's ``depth``-th."""


class RetrievalEvaluator:
    """Ranks each split's whole corpus for each of its queries and computes the graded metrics.

    The ranker is a ``DualEncoder`` (embeddings, exact or faiss search) or a ``Ranker`` (BM25); both go
    through the same self-hit rule, top-k cut and metrics.
    """

    def __init__(self, settings: EvaluationSettings | None = None, shards: Shards | None = None):
        self.settings = settings or EvaluationSettings()
        self.shards = shards
        self.cache = (
            EmbeddingCache(self.settings.cache_dir, self.settings.embedding_dtype) if self.settings.cache_dir else None
        )

    def evaluate(self, ranker: DualEncoder | Ranker, split: RetrievalSplit) -> tuple[dict[str, float], Run]:
        """Returns ({metric: value}, run) for one split."""
        run, _ = self.rank(ranker, split)
        return compute_metrics(split.qrels, run), run

    def rank(self, ranker: DualEncoder | Ranker, split: RetrievalSplit) -> tuple[Run, dict[str, str | int]]:
        """Each query's top_k passages in ``trec_order``, whatever the ranker and backend, and what was decided.

        Returns (run, {"ranker": its description, "self_hit_rule": sentence, "self_hits_dropped": count,
        "queries_without_hits": count}). A query without hits (BM25: no term shared with any passage) is
        not in the run file, so it is not scored, as trec_eval skips it; the count says how many.
        """
        self_queries, rule = self_hit_queries(self.settings.remove_self_hits, split.queries, split.corpus)
        # One hit beyond top_k where a self-hit may be dropped, so that top_k are left.
        depth = self.settings.top_k + bool(self_queries)
        if isinstance(ranker, DualEncoder):
            hits, description = self.dense_hits(ranker, split, depth), f"dense encoder, {self.settings.backend} search"
        else:
            hits, description = ranker.hits(split, depth), ranker.description
        run: Run = {}
        dropped = 0
        for query_id, query_hits in hits.items():
            kept = without_self_hit(query_id, query_hits, self_queries)
            dropped += len(query_hits) - len(kept)
            run[query_id] = dict(trec_order(dict(kept))[: self.settings.top_k])
        without_hits = sum(not query_hits for query_hits in run.values())
        log.info("%s: ranked by %s; %s; %d hits dropped", split.name, description, rule, dropped)
        if without_hits:
            log.warning(
                "%s: %d of %d queries got no hit; they are not scored (trec_eval skips queries missing from a run)",
                split.name,
                without_hits,
                len(run),
            )
        return run, {
            "ranker": description,
            "self_hit_rule": rule,
            "self_hits_dropped": dropped,
            "queries_without_hits": without_hits,
        }

    def dense_hits(self, encoder: DualEncoder, split: RetrievalSplit, depth: int) -> dict[str, list[tuple[str, float]]]:
        """{query id: [(corpus id, score), ...]}: every passage scoring as high as the query's ``depth``-th.

        Spread over ``shards``, each process encodes and searches its slice of the corpus and the slices' hits
        are merged (see ``sycl.evaluation.sharding`` for why the merge loses no passage at the cut). The slice's
        embeddings are written to disk as they are encoded and searched memory-mapped
        (``sycl.evaluation.store``): in the cache, or in a temporary folder removed afterwards.
        """
        corpus_ids = list(split.corpus)
        slice_ids = corpus_ids[self.shards.rank :: self.shards.world_size] if self.shards else corpus_ids
        query_ids = list(split.queries)
        query_embeddings = self.encode(encoder, [split.queries[q] for q in query_ids], "query")
        with tempfile.TemporaryDirectory(prefix="sycl-embeddings-") as scratch:
            corpus_embeddings = self.corpus_embeddings(encoder, split, slice_ids, Path(scratch))
            search = faiss_search if self.settings.backend == "faiss" else exact_search
            options = {} if self.settings.backend == "faiss" else {"corpus_chunk_size": self.settings.corpus_chunk_size}
            if corpus_embeddings.shape[0]:
                scores, indices = search_past_ties(search, query_embeddings, corpus_embeddings, depth, **options)
                indices = self.shards.global_rows(indices) if self.shards else indices
            else:  # more processes than passages
                scores, indices = torch.empty(len(query_ids), 0), torch.empty(len(query_ids), 0, dtype=torch.long)
            del corpus_embeddings  # unmap before the scratch folder goes
        if self.shards:
            scores, indices = self.shards.gather_hits(scores, indices)
        return {
            query_id: [
                (corpus_ids[j], s)
                for j, s in zip(indices[row].tolist(), scores[row].tolist(), strict=True)
                if j >= 0  # a slot another process had no hit for
            ]
            for row, query_id in enumerate(query_ids)
        }

    def corpus_embeddings(
        self, encoder: DualEncoder, split: RetrievalSplit, corpus_ids: list[str], scratch: Path
    ) -> torch.Tensor:
        """[N, H] embeddings of ``corpus_ids``, memory-mapped: from the cache when it holds them for these weights,
        corpus bytes and storage dtype, else encoded into a new cache entry (or, without a cache, into ``scratch``).

        Sharded, ``corpus_ids`` is this process's slice, cached on its own (its key names the slice) as soon as it
        is encoded, so a run killed after some slices re-encodes only the others.
        """
        texts = (
            split.corpus.texts(corpus_ids)
            if isinstance(split.corpus, OffsetTexts)
            else [split.corpus[c] for c in corpus_ids]
        )

        def encode(allocate):
            return self.encode(encoder, texts, "passage", allocate)

        if self.cache is None:
            return write_entry(scratch / "corpus", corpus_ids, self.settings.embedding_dtype, encode)
        key = self.cache.key(model_fingerprint(encoder), split.corpus_file, self.settings.bf16)
        if self.shards:
            key += f"-slice{self.shards.rank}of{self.shards.world_size}"
        cached = self.cache.load(key, corpus_ids)
        if cached is not None:
            return cached
        return self.cache.write(key, corpus_ids, encode, split.corpus_source)

    def encode(self, encoder: DualEncoder, texts: Sequence[str], kind: str, allocate=None) -> torch.Tensor:
        s = self.settings
        progress = s.progress and (self.shards is None or self.shards.is_main)  # one bar, not one per process
        device = str(self.shards.fabric.device) if self.shards else s.device
        return encode_texts(encoder, texts, kind, s.batch_size, s.bf16, device, progress, allocate)

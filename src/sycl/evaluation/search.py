"""Exact (brute-force) inner-product search with bounded memory, and the same through faiss when installed."""

from collections.abc import Callable

import torch


def exact_search(
    queries: torch.Tensor,
    corpus: torch.Tensor,
    top_k: int,
    corpus_chunk_size: int = 50_000,
    query_chunk_size: int = 1024,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k passages of every query by dot product.

    queries: [Q, H]; corpus: [N, H], in memory or memory-mapped (``sycl.evaluation.store``), float32 or float16
    (widened to the queries' dtype). Returns scores [Q, k] (descending) and corpus indices [Q, k], with
    k = min(top_k, N). Scores are computed one (query chunk x corpus chunk) block at a time and merged
    into a running top-k, so beyond the embeddings themselves memory stays below
    query_chunk_size * (corpus_chunk_size + 2 * k) floats (about 200 MB at the defaults and k = 1000), plus one
    widened corpus chunk.
    """
    k = min(top_k, corpus.shape[0])
    all_scores, all_indices = [], []
    for q_start in range(0, queries.shape[0], query_chunk_size):
        block = queries[q_start : q_start + query_chunk_size]
        best_scores = torch.full((block.shape[0], 0), float("-inf"), dtype=block.dtype, device=block.device)
        best_indices = torch.zeros((block.shape[0], 0), dtype=torch.long, device=block.device)
        for c_start in range(0, corpus.shape[0], corpus_chunk_size):
            # A memory-mapped corpus is read here, one chunk at a time; a float16 one is widened chunk by chunk.
            scores = block @ corpus[c_start : c_start + corpus_chunk_size].to(block.dtype).T
            chunk_scores, chunk_indices = scores.topk(min(k, scores.shape[1]), dim=1)
            merged_scores = torch.cat([best_scores, chunk_scores], dim=1)
            merged_indices = torch.cat([best_indices, chunk_indices + c_start], dim=1)
            best_scores, position = merged_scores.topk(min(k, merged_scores.shape[1]), dim=1)
            best_indices = merged_indices.gather(1, position)
        all_scores.append(best_scores)
        all_indices.append(best_indices)
    return torch.cat(all_scores), torch.cat(all_indices)


def faiss_search(queries: torch.Tensor, corpus: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The same result through faiss ``IndexFlatIP`` (exact); needs ``pip install faiss-cpu``."""
    import faiss

    index = faiss.IndexFlatIP(corpus.shape[1])
    index.add(corpus.float().contiguous().numpy())
    scores, indices = index.search(queries.float().contiguous().numpy(), min(top_k, corpus.shape[0]))
    return torch.from_numpy(scores), torch.from_numpy(indices).long()


def search_past_ties(
    search: Callable[..., tuple[torch.Tensor, torch.Tensor]],
    queries: torch.Tensor,
    corpus: torch.Tensor,
    depth: int,
    **options,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``search`` deep enough that every passage scoring as high as each query's ``depth``-th hit is returned.

    queries: [Q, H]; corpus: [N, H]. Returns scores and indices [Q, k] with k > depth unless k = N.
    A backend returns the top k by score but picks arbitrarily among passages tied at its k-th score
    (torch.topk and faiss pick differently), so a cut at ``depth`` of its output could depend on the
    backend. When the last returned hit scores strictly below the ``depth``-th, no passage left out
    ties with any of the first ``depth``, and the caller can order ties itself (``trec_order``).
    Otherwise the search is repeated twice as deep: the same queries against the same corpus, so the
    same scores. On real corpora ties at the cut are rare (duplicate passages), so one pass is usual.
    """
    k = depth + 1
    while True:
        scores, indices = search(queries, corpus, k, **options)
        if k >= corpus.shape[0] or bool((scores[:, k - 1] < scores[:, depth - 1]).all()):
            return scores, indices
        k = min(2 * k, corpus.shape[0])

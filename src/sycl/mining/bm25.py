"""BM25 ranking of a corpus.jsonl with the ``bm25s`` library (sparse-matrix BM25, scored as Lucene does)."""

import contextlib
import logging
import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import bm25s
import numpy as np
from tqdm.auto import tqdm

from sycl.data.beir_files import iter_corpus
from sycl.mining.negatives import Hit

log = logging.getLogger(__name__)
# bm25s sets its own logger to DEBUG when imported, which prints index internals on every run.
logging.getLogger("bm25s").setLevel(logging.INFO)

# Han, kana and Hangul: scripts written without spaces between words (Hangul has spaces between phrases).
CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
# Terms as regular expressions for bm25s.tokenize (``findall``; a pattern with one group yields the group).
TOKENIZERS = {
    # bm25s's default (scikit-learn's): runs of 2+ word characters. A sentence of Chinese or Japanese
    # is then one term, which matches nothing but the same sentence.
    "words": r"(?u)\b\w\w+\b",
    # Lucene's CJKAnalyzer: overlapping character bigrams inside a CJK run, a lone CJK character as
    # itself, and runs of 2+ other word characters as words. Zero-width lookaheads make the bigrams overlap.
    "cjk_bigrams": rf"(?=((?<![{CJK}])[{CJK}](?![{CJK}])|[{CJK}]{{2}}|(?<![^\W{CJK}])[^\W{CJK}]{{2,}}))",
}


class BM25Miner:
    """Indexes a corpus with bm25s in one streaming pass and ranks it for each query.

    Defaults are Anserini's MS MARCO passage settings (k1=0.9, b=0.4, Lucene scoring), the usual
    source of "BM25 top-1000" negatives. Anserini also Porter-stems; here stemming is off unless
    ``stemmer`` is given (any object with ``stemWords`` or a callable on a list of words, e.g.
    PyStemmer's ``Stemmer.Stemmer("porter")``). ``stopwords`` is bm25s's list name ("en") or None.
    ``tokenizer`` names how text is cut into terms (``TOKENIZERS``): ``words``, or ``cjk_bigrams`` for
    Chinese, Japanese or Korean text.

    ``workers`` processes rank the queries once the index is built (``batch_ranking``); the hits are the same
    for any number of them.

    A query without any term after tokenisation (all stopwords, say) gets no hits, as does every query
    when no passage of the corpus has a term; both are logged, and the run finishes.

    Memory: the index keeps token ids, not texts. On synthetic corpora shaped like MS MARCO (56 words
    per passage, millions of rare terms), indexing peaked at 1.9 KB per passage over a 0.4 GB base,
    so about 17 GB for MS MARCO's 8.8M; scoring adds one float32 per passage per query in flight.
    """

    name = "bm25"

    def __init__(
        self,
        k1: float = 0.9,
        b: float = 0.4,
        method: str = "lucene",
        stopwords: str | None = "en",
        stemmer=None,
        tokenizer: str = "words",
        query_batch_size: int = 1024,
        workers: int = 1,
        progress: bool = True,
    ):
        if tokenizer not in TOKENIZERS:
            raise ValueError(f"miner.tokenizer={tokenizer!r} is not one of {sorted(TOKENIZERS)}")
        if workers < 1:
            raise ValueError(f"miner.workers={workers} must be >= 1 (processes that rank queries)")
        if workers > 1 and "fork" not in multiprocessing.get_all_start_methods():
            raise ValueError("miner.workers > 1 shares the index with forked processes, which this system lacks")
        self.k1, self.b, self.method = k1, b, method
        self.stopwords, self.stemmer, self.tokenizer = stopwords, stemmer, tokenizer
        self.query_batch_size, self.workers, self.progress = query_batch_size, workers, progress

    def tokenize(self, texts, return_ids: bool = True, show_progress: bool = False):
        """Queries and passages go through the same tokenizer (lower-case, terms, stopwords, optional stemmer).

        Returns bm25s's ``Tokenized`` (ids and vocabulary) or, with ``return_ids=False``, lists of terms.
        """
        return bm25s.tokenize(
            texts,
            token_pattern=TOKENIZERS[self.tokenizer],
            stopwords=self.stopwords,
            stemmer=self.stemmer,
            return_ids=return_ids,
            show_progress=show_progress,
        )

    def index(
        self, corpus_path: str | Path, passages: Iterable[tuple[str, str]] | None = None
    ) -> tuple[bm25s.BM25 | None, list[str]]:
        """Build the index; returns it and the corpus ids in index order.

        ``passages`` are (corpus id, text) pairs of ``corpus_path`` already read (evaluation holds them), in file
        order; None reads the file. The index is None when no passage has a term after tokenisation: bm25s
        cannot index an empty vocabulary, and no query could match anyway.
        """
        corpus_ids: list[str] = []

        def texts() -> Iterator[str]:
            for corpus_id, text in iter_corpus(corpus_path) if passages is None else passages:
                corpus_ids.append(corpus_id)
                yield text

        log.info("indexing %s with bm25s (k1=%s, b=%s, %s)", corpus_path, self.k1, self.b, self.method)
        started = time.perf_counter()
        tokens = self.tokenize(texts(), show_progress=self.progress)
        if not tokens.vocab:
            log.warning(
                "%s: none of its %d passages has a term after tokenisation (miner.tokenizer=%s, miner.stopwords=%s), "
                "so no query can match any passage and every query gets no negatives",
                corpus_path,
                len(corpus_ids),
                self.tokenizer,
                self.stopwords,
            )
            return None, corpus_ids
        retriever = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
        retriever.index(tokens, show_progress=self.progress)
        log.info(
            "indexed %d passages (%d terms) in %.0f s",
            len(corpus_ids),
            len(retriever.vocab_dict),
            time.perf_counter() - started,
        )
        return retriever, corpus_ids

    def rank(
        self,
        corpus_path: str | Path,
        queries: dict[str, str],
        top_k: int,
        past_ties: bool = False,
        passages: Iterable[tuple[str, str]] | None = None,
    ) -> Iterator[tuple[str, list[Hit]]]:
        """Yield (query id, hits best first) for every query, in the order of ``queries``.

        At most ``top_k`` hits, and only passages sharing at least one term with the query (score > 0).
        With ``past_ties``, also every passage tied with the ``top_k``-th (``top_matches_past_ties``), so a
        caller that cuts ties in its own order (evaluation's ``trec_order``) does not depend on bm25s's.
        ``passages``: see ``index``.
        """
        retriever, corpus_ids = self.index(corpus_path, passages)
        yield from self.search(retriever, corpus_ids, queries, top_k, past_ties)

    def search(
        self,
        retriever: bm25s.BM25 | None,
        corpus_ids: list[str],
        queries: dict[str, str],
        top_k: int,
        past_ties: bool = False,
    ) -> Iterator[tuple[str, list[Hit]]]:
        """``rank`` on an index built by ``index``: the queries in batches of ``query_batch_size``, each batch
        spread over ``workers`` processes. The hits do not depend on ``workers``: each query is scored alone."""
        select = top_matches_past_ties if past_ties else top_matches
        query_ids = list(queries)
        without_terms = 0
        with (
            tqdm(total=len(query_ids), desc="BM25 top-k", unit="query", disable=not self.progress) as bar,
            batch_ranking(retriever, select, top_k, self.workers) as rank_all,
        ):
            for start in range(0, len(query_ids), self.query_batch_size):
                batch = query_ids[start : start + self.query_batch_size]
                terms = self.tokenize([queries[q] for q in batch], return_ids=False)
                without_terms += sum(not query_terms for query_terms in terms)
                for query_id, (scores, indices) in zip(batch, rank_all(terms), strict=True):
                    yield query_id, [(corpus_ids[i], s) for i, s in zip(indices.tolist(), scores.tolist(), strict=True)]
                bar.update(len(batch))
        if without_terms:
            log.warning(
                "%d of %d queries have no term after tokenisation (miner.tokenizer=%s, miner.stopwords=%s): no hits",
                without_terms,
                len(query_ids),
                self.tokenizer,
                self.stopwords,
            )


BatchRanking = Callable[[list[list[str]]], Iterable[tuple[np.ndarray, np.ndarray]]]
"""Query terms of a batch -> (scores, corpus indices) of each query, in order."""


@contextlib.contextmanager
def batch_ranking(retriever: bm25s.BM25 | None, select: Callable, top_k: int, workers: int) -> Iterator[BatchRanking]:
    """A function that ranks a batch of queries with ``select``, here or in ``workers`` forked processes.

    Processes, not threads: two threads running ``top_matches`` took as long as one in a trial (the GIL), and
    bm25s's threaded ``retrieve`` is slower still (``benchmarks/mine_workers.py``). Forked processes share the
    index copy-on-write, so it is neither copied nor pickled; each gets the terms of a share of the batch and
    returns arrays, in order (``imap``).
    """
    if retriever is None:  # no passage has a term: no query can match
        yield lambda terms: [(np.empty(0, dtype=np.float32), np.empty(0, dtype=np.int64)) for _ in terms]
        return
    if workers == 1:
        yield lambda terms: (select(retriever, query_terms, top_k) for query_terms in terms)
        return
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=start_ranking_worker, initargs=(retriever, select, top_k)) as pool:
        yield lambda terms: pool.imap(rank_in_worker, terms, chunksize=max(1, len(terms) // (4 * workers)))


# Set in each forked worker by ``start_ranking_worker``: (retriever, select, top_k). With fork, the
# initializer's arguments reach the worker as the parent's memory, so the index is never pickled.
_worker_ranking: tuple | None = None


def start_ranking_worker(retriever: bm25s.BM25, select: Callable, top_k: int) -> None:
    global _worker_ranking
    _worker_ranking = (retriever, select, top_k)


def rank_in_worker(query_terms: list[str]) -> tuple[np.ndarray, np.ndarray]:
    retriever, select, top_k = _worker_ranking
    return select(retriever, query_terms, top_k)


def top_matches(retriever: bm25s.BM25, query_tokens: list[str], top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``top_k`` best-scoring passages among those that share a term with the query.

    Returns scores [k'] (descending; ties by corpus position) and corpus indices [k'], k' <= top_k. The
    scores are bm25s's (``BM25.get_scores``); only the selection is done here. bm25s's own top-k
    (``retrieve``) partitions all N scores, and as most are 0 that took 35 of the 36 ms per query on a
    250k-passage corpus; it also pads a short ranking with arbitrary score-0 passages, which are not
    retrieved and would be dropped anyway.
    """
    if not query_tokens:
        return np.empty(0, dtype=np.float32), np.empty(0, dtype=np.int64)
    scores = retriever.get_scores(query_tokens)  # [N]
    matching = np.flatnonzero(scores > 0)
    if len(matching) > top_k:
        matching = matching[np.argpartition(scores[matching], -top_k)[-top_k:]]
    order = np.lexsort((matching, -scores[matching]))
    return scores[matching[order]], matching[order]


def top_matches_past_ties(index, query_terms: list[str], depth: int) -> tuple[np.ndarray, np.ndarray]:
    """``top_matches`` deep enough that every passage scoring as high as the ``depth``-th is returned.

    Returns scores [k] (descending) and corpus indices [k]. ``top_matches`` picks arbitrarily among passages
    tied at its last score; asking one deeper shows whether any passage left out could tie with the
    ``depth``-th, and if so the query is scored again twice as deep (as ``sycl.evaluation.search.search_past_ties``
    does for dense search).
    """
    k = depth + 1
    while True:
        scores, indices = top_matches(index, query_terms, k)
        if len(scores) < k or scores[k - 1] < scores[depth - 1]:
            return scores, indices
        k *= 2

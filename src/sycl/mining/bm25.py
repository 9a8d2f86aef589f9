"""BM25 ranking of a corpus.jsonl with the ``bm25s`` library (sparse-matrix BM25, scored as Lucene does)."""

import logging
from collections.abc import Iterator
from pathlib import Path

import bm25s
from tqdm.auto import tqdm

from sycl.mining.corpus import iter_corpus
from sycl.mining.negatives import Hit

log = logging.getLogger(__name__)
# bm25s sets its own logger to DEBUG when imported, which prints index internals on every run.
logging.getLogger("bm25s").setLevel(logging.INFO)


class BM25Miner:
    """Indexes a corpus with bm25s in one streaming pass and ranks it for each query.

    Defaults are Anserini's MS MARCO passage settings (k1=0.9, b=0.4, Lucene scoring), the usual
    source of "BM25 top-1000" negatives. Anserini also Porter-stems; here stemming is off unless
    ``stemmer`` is given (any object with ``stemWords`` or a callable on a list of words, e.g.
    PyStemmer's ``Stemmer.Stemmer("english")``). ``stopwords`` is bm25s's list name ("en") or None.

    Memory: the index keeps token ids, not texts. Measured on a synthetic corpus with MS MARCO's
    passage length, indexing peaks at about 1.6 KB per passage (about 14 GB for MS MARCO's 8.8M,
    see the README), and ranking holds one float32 score per passage per query being scored.
    """

    name = "bm25"

    def __init__(
        self,
        k1: float = 0.9,
        b: float = 0.4,
        method: str = "lucene",
        stopwords: str | None = "en",
        stemmer=None,
        n_threads: int = 0,
        query_batch_size: int = 1024,
        progress: bool = True,
    ):
        self.k1, self.b, self.method = k1, b, method
        self.stopwords, self.stemmer = stopwords, stemmer
        self.n_threads, self.query_batch_size, self.progress = n_threads, query_batch_size, progress

    def tokenize(self, texts, show_progress: bool = False) -> bm25s.tokenization.Tokenized:
        """Queries and passages go through the same tokenizer (lower-case, stopwords, optional stemmer)."""
        return bm25s.tokenize(texts, stopwords=self.stopwords, stemmer=self.stemmer, show_progress=show_progress)

    def index(self, corpus_path: str | Path) -> tuple[bm25s.BM25, list[str]]:
        """Build the index; returns it and the corpus ids in index order."""
        corpus_ids: list[str] = []

        def texts() -> Iterator[str]:
            for corpus_id, text in iter_corpus(corpus_path):
                corpus_ids.append(corpus_id)
                yield text

        log.info("indexing %s with bm25s (k1=%s, b=%s, %s)", corpus_path, self.k1, self.b, self.method)
        tokens = self.tokenize(texts(), show_progress=self.progress)
        retriever = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
        retriever.index(tokens, show_progress=self.progress)
        return retriever, corpus_ids

    def rank(self, corpus_path: str | Path, queries: dict[str, str], top_k: int) -> Iterator[tuple[str, list[Hit]]]:
        """Yield (query id, hits best first) for every query, in the order of ``queries``.

        At most ``top_k`` hits, and only passages sharing at least one term with the query: bm25s fills
        a top-k that has fewer matches with score-0 passages, which are arbitrary, not retrieved.
        """
        retriever, corpus_ids = self.index(corpus_path)
        k = min(top_k, len(corpus_ids))
        if k < top_k:
            log.warning("top_k=%d is more than the corpus holds: ranking all %d passages", top_k, k)
        query_ids = list(queries)
        with tqdm(total=len(query_ids), desc="BM25 top-k", unit="query", disable=not self.progress) as bar:
            for start in range(0, len(query_ids), self.query_batch_size):
                batch = query_ids[start : start + self.query_batch_size]
                documents, scores = retriever.retrieve(
                    self.tokenize([queries[q] for q in batch]), k=k, n_threads=self.n_threads, show_progress=False
                )
                for row, query_id in enumerate(batch):
                    yield (
                        query_id,
                        [
                            (corpus_ids[index], float(score))
                            for index, score in zip(documents[row].tolist(), scores[row].tolist(), strict=True)
                            if score > 0
                        ],
                    )
                bar.update(len(batch))

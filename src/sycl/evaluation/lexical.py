"""BM25 as an evaluation ranker: the lexical baseline row of a results table, scored by ``sycl.mining``'s BM25."""

from sycl.evaluation.datasets import RetrievalSplit
from sycl.mining.bm25 import BM25Miner


class BM25Retriever:
    """Ranks a split's corpus with bm25s through ``BM25Miner``: the same tokenizer, stopwords, stemmer and scores.

    ``stemmer`` names a Snowball algorithm of PyStemmer (``porter``, as Anserini stems) or is None. The
    evaluator (``RetrievalEvaluator.rank``) applies the self-hit rule and the top-k cut in ``trec_order``,
    exactly as for an encoder, so the results files have the same layout and the same checks. It indexes the
    split's corpus as ``load_split`` holds it in memory: the corpus file is read once per evaluation, not twice.
    """

    name = "bm25"

    def __init__(
        self,
        k1: float = 0.9,
        b: float = 0.4,
        method: str = "lucene",
        tokenizer: str = "words",
        stopwords: str | None = "en",
        stemmer: str | None = "porter",
        progress: bool = True,
    ):
        self.stemmer = stemmer
        self.settings = dict(
            k1=k1,
            b=b,
            method=method,
            stopwords=stopwords,
            stemmer=snowball_stemmer(stemmer) if stemmer else None,
            tokenizer=tokenizer,
            progress=progress,
        )

    @property
    def description(self) -> str:
        """The settings a reader needs to compare this row with another BM25's."""
        s = self.settings
        return (
            f"BM25 (bm25s, {s['method']} scoring, k1={s['k1']}, b={s['b']}, tokenizer={s['tokenizer']}, "
            f"stopwords={s['stopwords']}, stemmer={self.stemmer})"
        )

    def hits(self, split: RetrievalSplit, depth: int) -> dict[str, list[tuple[str, float]]]:
        """{query id: [(corpus id, score), ...]}: at least the ``depth`` best passages sharing a term with the query.

        Every passage that ties with a query's ``depth``-th score is included (``BM25Miner.rank``'s
        ``past_ties``), so the caller's cut in ``trec_order`` does not depend on how bm25s broke ties. A query
        with no term after tokenisation, or a corpus with none, gives no hits.
        """
        # The corpus as load_split holds it, in file order: the same index as from the file, without reading it again.
        miner = BM25Miner(**self.settings)
        return dict(miner.rank(split.corpus_file, split.queries, depth, past_ties=True, passages=split.corpus.items()))


def snowball_stemmer(algorithm: str):
    """PyStemmer's stemmer for ``algorithm`` (``porter``: Porter's 1980 stemmer, which Anserini uses)."""
    try:
        import Stemmer
    except ImportError as error:
        raise ImportError(
            f"ranker.stemmer={algorithm} needs PyStemmer: pip install -r requirements.txt, or set ranker.stemmer=null"
        ) from error
    return Stemmer.Stemmer(algorithm)

"""eval.py with ranker=bm25 reads each corpus file once (load_split), indexes the texts it holds in memory, and
scores as before: the README's BM25 rows, and BM25Miner's ranking of the file, hit for hit."""

from collections import Counter
from pathlib import Path

import pytest

from sycl.data import beir_files
from sycl.evaluation import DatasetSpec, load_split
from sycl.evaluation.lexical import BM25Retriever
from sycl.evaluation.run import evaluate
from sycl.mining.bm25 import BM25Miner
from tests.beir_fixtures import write_beir
from tests.conftest import compose_config
from tests.test_bm25_degenerate import STOPWORDS_ONLY
from tests.test_cranfield_bm25 import CRANFIELD, collection_with_ties_and_a_self_hit

# README "Evaluation": python eval.py ranker=bm25, NDCG@10 and MAP@100 as printed there.
README_BM25 = {"demo": (0.7289, 0.5483), "cranfield": (0.5078, 0.4034)}


@pytest.fixture
def corpus_reads(monkeypatch) -> Counter:
    """Counts, per file, the passes of the data readers over it (every reader goes through ``iter_lines``)."""
    reads: Counter = Counter()
    iter_lines = beir_files.iter_lines

    def counted(path):
        reads[Path(path).resolve()] += 1
        return iter_lines(path)

    monkeypatch.setattr(beir_files, "iter_lines", counted)
    return reads


def test_eval_py_bm25_reads_each_corpus_once_and_scores_as_the_readme_says(tmp_path, corpus_reads):
    results = evaluate(compose_config("eval", tmp_path / "run", ["ranker=bm25", "evaluation.progress=false"]))
    for dataset, (ndcg, map_100) in README_BM25.items():
        assert (round(results[dataset]["NDCG@10"], 4), round(results[dataset]["MAP@100"], 4)) == (ndcg, map_100)
    for corpus in (CRANFIELD.parent / "demo" / "test" / "corpus.jsonl", CRANFIELD / "corpus.jsonl"):
        assert corpus_reads[corpus.resolve()] == 1, corpus


def stopwords_only(folder: Path) -> Path:
    """A corpus in which no passage has a term after tokenisation."""
    write_beir(folder, {"q1": "what do foxes eat"}, STOPWORDS_ONLY, [("q1", "c1", 1)], split="test")
    return folder


@pytest.mark.parametrize("collection", [collection_with_ties_and_a_self_hit, stopwords_only])
def test_the_loaded_corpus_ranks_as_bm25miner_ranks_the_file(tmp_path, collection, caplog):
    split = load_split(DatasetSpec(str(collection(tmp_path / "collection"))), tmp_path)
    retriever = BM25Retriever(progress=False)
    miner = BM25Miner(**retriever.settings)  # what BM25Retriever ranked with before: the same settings, the file
    for depth in (1, 2, 1000):
        from_file = dict(miner.rank(split.corpus_file, split.queries, depth, past_ties=True))
        assert retriever.hits(split, depth) == from_file
    if collection is stopwords_only:
        assert "collection/corpus.jsonl: none of its 3 passages has a term after tokenisation" in caplog.text

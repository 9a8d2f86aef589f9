"""BM25 mining of inputs with few or no terms: stopword-only passages and queries, and text without spaces.

Such inputs finish with the affected queries counted as having no negatives and a warning that names
the cause; text written without spaces between words (Chinese, Japanese) is mined with ``cjk_bigrams``.
"""

import logging
from pathlib import Path

import pytest
from hydra.errors import InstantiationException

from sycl.mining import BM25Miner, mine
from tests.beir_fixtures import write_beir
from tests.conftest import compose_config

STOPWORDS_ONLY = {"c1": "the and of", "c2": "it is to be", "c3": "a an the"}
CJK_CORPUS = {
    "zh-beida": "北京大学位于北京市海淀区，是中国著名的综合性大学。",
    "zh-panda": "大熊猫主要生活在四川的山区，以竹子为食。",
    "zh-tea": "绿茶是中国最常见的茶类，龙井茶产于杭州。",
    "ja-fuji": "富士山は日本で一番高い山で、標高は三七七六メートルです。",
    "ja-sushi": "寿司は酢飯と魚を組み合わせた日本の料理です。",
}
CJK_QUERIES = {
    "q-beida": "北京大学在哪里",
    "q-panda": "大熊猫吃什么",
    "q-fuji": "日本で一番高い山は",
    "q-sushi": "寿司とは",
}
CJK_ANSWERS = {"q-beida": "zh-beida", "q-panda": "zh-panda", "q-fuji": "ja-fuji", "q-sushi": "ja-sushi"}


def mine_folder(tmp_path: Path, folder: Path, *overrides: str) -> dict:
    cfg = compose_config(
        "mine",
        tmp_path / "run",
        ["progress=false", f"dataset={folder}", "top_k=10", "negatives_per_query=null", *overrides],
    )
    return mine(cfg)


def test_a_corpus_without_any_term_finishes_with_no_negatives_and_says_why(tmp_path, caplog):
    folder = tmp_path / "stopwords"
    write_beir(folder, {"q1": "what do foxes eat"}, STOPWORDS_ONLY, [("q1", "c1", 1)])
    with caplog.at_level(logging.WARNING):
        summary = mine_folder(tmp_path, folder)
    assert summary["queries_without_negatives"] == 1 and summary["queries_written"] == 0
    assert Path(summary["output"]).read_text() == ""
    assert f"{folder / 'corpus.jsonl'}: none of its 3 passages has a term after tokenisation" in caplog.text


def test_a_query_without_any_term_gets_no_negatives_and_is_counted(tmp_path, caplog):
    folder = tmp_path / "mixed"
    corpus = {**STOPWORDS_ONLY, "c4": "Foxes eat rodents, birds, insects and berries.", "c5": "Foxes live in dens."}
    queries = {"q-stop": "Is it to be?", "q-fox": "what do foxes eat"}
    write_beir(folder, queries, corpus, [("q-stop", "c1", 1), ("q-fox", "c4", 1)])
    with caplog.at_level(logging.WARNING):
        summary = mine_folder(tmp_path, folder)
    assert summary["queries_without_negatives"] == 1 and summary["queries_written"] == 1
    assert summary["negatives"] == 1  # c5 for q-fox; the stopword-only passages match nothing
    assert "1 of 2 queries have no term after tokenisation" in caplog.text


def test_cjk_bigrams_retrieve_the_right_passage_where_words_match_nothing(tmp_path):
    write_beir(tmp_path / "cjk", CJK_QUERIES, CJK_CORPUS, [])
    corpus = tmp_path / "cjk" / "corpus.jsonl"
    ranked = dict(BM25Miner(tokenizer="cjk_bigrams", stopwords=None, progress=False).rank(corpus, CJK_QUERIES, 3))
    assert {query_id: hits[0][0] for query_id, hits in ranked.items()} == CJK_ANSWERS
    # A sentence without spaces is one "word": no query shares one with a passage.
    words = dict(BM25Miner(tokenizer="words", stopwords=None, progress=False).rank(corpus, CJK_QUERIES, 3))
    assert all(hits == [] for hits in words.values())


def test_the_tokenizer_is_a_mine_py_option(tmp_path):
    folder = tmp_path / "cjk"
    write_beir(folder, CJK_QUERIES, CJK_CORPUS, list((q, d, 1) for q, d in CJK_ANSWERS.items()))
    summary = mine_folder(tmp_path, folder, "miner.tokenizer=cjk_bigrams", "miner.stopwords=null")
    assert summary["positives_retrieved"] == len(CJK_QUERIES)  # each answer was ranked, then left out
    with pytest.raises(
        InstantiationException, match=r"miner.tokenizer='chinese' is not one of \['cjk_bigrams', 'words'\]"
    ):
        mine_folder(tmp_path, folder, "miner.tokenizer=chinese", f"output={tmp_path / 'never_written.jsonl'}")

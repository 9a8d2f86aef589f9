"""The shipped demo data (data/demo) is complete and clean: a broken edit fails CI."""

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from sycl.data.beir_files import read_corpus, read_qrels, read_queries

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def all_passages() -> dict[str, str]:
    return {
        f"{part}/{pid}": text
        for part in ("synthetic", "real", "test")
        for pid, text in read_corpus(DEMO / part / "corpus.jsonl").items()
    }


def test_synthetic_training_lists_have_one_passage_per_level():
    queries = read_queries(DEMO / "synthetic" / "queries.jsonl")
    corpus = read_corpus(DEMO / "synthetic" / "corpus.jsonl")
    qrels = read_qrels(DEMO / "synthetic" / "qrels" / "train.tsv")
    assert len(queries) >= 120 and set(qrels) == set(queries)
    for query_id, judged in qrels.items():
        assert sorted(judged.values()) == [0, 1, 2, 3], query_id
        assert set(judged) <= set(corpus)
    assert len(corpus) == 4 * len(queries)  # no passage outside the lists


def test_real_split_has_one_positive_per_training_query_and_a_negative_pool():
    queries = read_queries(DEMO / "real" / "queries.jsonl")
    corpus = read_corpus(DEMO / "real" / "corpus.jsonl")
    qrels = read_qrels(DEMO / "real" / "qrels" / "train.tsv")
    assert queries == read_queries(DEMO / "synthetic" / "queries.jsonl")
    assert set(qrels) == set(queries)
    assert all(list(judged.values()) == [1.0] and set(judged) <= set(corpus) for judged in qrels.values())
    assert len(corpus) - len(qrels) >= 250


def test_test_collection_is_graded_and_disjoint_from_training():
    queries = read_queries(DEMO / "test" / "queries.jsonl")
    corpus = read_corpus(DEMO / "test" / "corpus.jsonl")
    test, dev = (read_qrels(DEMO / "test" / "qrels" / f"{split}.tsv") for split in ("test", "dev"))
    assert len(test) >= 50 and 10 <= len(dev) <= 20 and not set(test) & set(dev)
    assert set(test) | set(dev) == set(queries)
    for judged in list(test.values()) + list(dev.values()):
        assert sorted(judged.values()) == [0, 1, 2, 3] and set(judged) <= set(corpus)
    judged_ids = {pid for judged in list(test.values()) + list(dev.values()) for pid in judged}
    assert len(set(corpus) - judged_ids) >= 150  # distractors
    training_queries = set(read_queries(DEMO / "synthetic" / "queries.jsonl").values())
    assert not training_queries & set(queries.values())


def test_every_passage_has_40_to_120_words_and_no_two_share_a_12_word_shingle():
    passages = all_passages()
    lengths = {pid: len(words(text)) for pid, text in passages.items()}
    assert all(40 <= n <= 120 for n in lengths.values()), [p for p, n in lengths.items() if not 40 <= n <= 120]
    holders = defaultdict(set)
    for pid, text in passages.items():
        tokens = words(text)
        for i in range(len(tokens) - 11):
            holders[" ".join(tokens[i : i + 12])].add(pid)
    shared = {shingle: ids for shingle, ids in holders.items() if len(ids) > 1}
    assert not shared, list(shared.items())[:3]


@pytest.mark.parametrize("part", ["synthetic", "real", "test"])
def test_files_are_utf8_json_lines_with_unique_ids(part):
    for name in ("corpus.jsonl", "queries.jsonl"):
        ids = [json.loads(line)["_id"] for line in (DEMO / part / name).read_text(encoding="utf-8").splitlines()]
        assert not [i for i, n in Counter(ids).items() if n > 1]

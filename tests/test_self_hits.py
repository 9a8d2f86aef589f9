"""The self-hit rule is decided by the data, whatever the dataset is called; mining applies it as evaluation does."""

import json
import logging

import pytest

from sycl.evaluation import DatasetSpec, EvaluationSettings, RetrievalEvaluator, load_split
from sycl.evaluation.self_hits import self_hit_queries
from sycl.mining import mine
from sycl.models import DualEncoder
from tests.beir_fixtures import write_beir
from tests.conftest import compose_config

QUERIES = {"a1": "School uniforms reduce bullying.", "a2": "Nuclear power is low-carbon."}
CORPUS = {
    "a1": "Uniforms. School uniforms  reduce bullying.",  # the query itself, with a title and other spacing
    "a2": "An unrelated passage that merely shares the id, as MS MARCO's numbered ids do.",
    "c1": "Uniforms suppress self-expression.",
    "c2": "Nuclear waste stays dangerous for millennia.",
}


def test_auto_drops_only_queries_that_are_their_own_passage():
    dropped, reason = self_hit_queries("auto", QUERIES, CORPUS)
    assert dropped == {"a1"}
    assert "1 of 2 queries are corpus passages" in reason and "1 more query ids are ids of passages" in reason
    assert self_hit_queries(True, QUERIES, CORPUS)[0] == {"a1", "a2"}  # BEIR's rule: the id alone
    assert self_hit_queries(False, QUERIES, CORPUS)[0] == set()
    with pytest.raises(ValueError, match="remove_self_hits='yes' is not one of auto, true, false"):
        self_hit_queries("yes", QUERIES, CORPUS)


@pytest.mark.parametrize("name", ["scifact", "arguana"])
def test_evaluation_applies_the_rule_whatever_the_folder_is_called(tmp_path, tiny_model_path, name, caplog):
    write_beir(tmp_path / name, QUERIES, CORPUS, [("a1", "c1", 1), ("a2", "c2", 1)], split="test")
    split = load_split(DatasetSpec(str(tmp_path / name)), tmp_path)
    evaluator = RetrievalEvaluator(EvaluationSettings(top_k=4, progress=False))
    with caplog.at_level(logging.INFO):
        run, self_hits = evaluator.rank(DualEncoder.from_pretrained(tiny_model_path), split)
    assert sorted(run["a1"]) == ["a2", "c1", "c2"]  # the query itself is gone, whatever the folder's name
    assert sorted(run["a2"]) == ["a1", "a2", "c1", "c2"]  # a passage that only shares the id stays rankable
    assert self_hits["self_hits_dropped"] == 1 and "1 of 2 queries are corpus passages" in caplog.text


def test_mining_drops_the_query_itself_by_the_same_rule(tmp_path):
    write_beir(tmp_path / "d", QUERIES, CORPUS, [("a1", "c1", 1), ("a2", "c2", 1)])
    output = tmp_path / "negatives.jsonl"
    cfg = compose_config(
        "mine",
        tmp_path / "run",
        ["progress=false", f"dataset={tmp_path / 'd'}", "top_k=4", "negatives_per_query=null", f"output={output}"],
    )
    summary = mine(cfg)
    written = {r["query-id"]: r["corpus-ids"] for r in map(json.loads, output.read_text().splitlines())}
    assert "a1" not in written.get("a1", []) and summary["self_hits_dropped"] == 1

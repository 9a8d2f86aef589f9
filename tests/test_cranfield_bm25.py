"""The shipped Cranfield collection, the BM25 ranker of eval.py, and train-then-test on the demo set and Cranfield."""

import json
from collections import Counter
from pathlib import Path

import pytest
import pytrec_eval
import scipy.stats

from sycl.evaluation import DatasetSpec, load_split
from sycl.evaluation.run import evaluate
from sycl.training.run import train
from tests.beir_fixtures import write_beir
from tests.conftest import CONF_DIR, compose_config, compose_train_config
from tests.test_train import tiny_overrides

CRANFIELD = Path(CONF_DIR).parent / "data" / "cranfield"


def test_shipped_cranfield_loads_with_the_stats_of_its_stats_json(tmp_path):
    stats = json.loads((CRANFIELD / "stats.json").read_text())
    split = load_split(DatasetSpec(str(CRANFIELD), "all"), tmp_path, download=False)
    assert (len(split.queries), len(split.corpus)) == (stats["queries"], stats["docs"]) == (225, 1400)
    assert sum(len(judged) for judged in split.qrels.values()) == stats["qrels_rows"] == 1837
    labels = Counter(label for judged in split.qrels.values() for label in judged.values())
    assert {str(label): count for label, count in labels.items()} == stats["beir_score_hist"]
    assert split.checks["empty_passages"] == stats["docs_empty_text"] == 2
    assert split.checks["judged_pairs_not_in_corpus"] == 0


def test_eval_and_train_default_to_the_demo_set_and_cranfield(tmp_path):
    for name in ("eval", "train"):
        cfg = compose_config(name, tmp_path, [])
        assert [(d.name, Path(d.path)) for d in cfg.benchmark.datasets] == [
            ("demo", CRANFIELD.parent / "demo" / "test"),
            ("cranfield", CRANFIELD),
        ]


def collection_with_ties_and_a_self_hit(folder: Path) -> Path:
    """dupA-dupE are the same passage (tied BM25 scores), and query s1 is itself corpus passage s1."""
    queries = {"q1": "how long to boil eggs", "q2": "capital of France", "s1": "bananas are yellow fruit"}
    corpus = {
        "e3": "Boil an egg for nine minutes for a firm yolk.",
        "e1": "Eggs are a source of protein.",
        "f3": "Paris is the capital of France.",
        # Last id first: a pass that keeps only some of them keeps late ones (numpy's argpartition), not dupE.
        "dupE": "Paris, France: capital city.",
        "dupD": "Paris, France: capital city.",
        "dupC": "Paris, France: capital city.",
        "dupB": "Paris, France: capital city.",
        "dupA": "Paris, France: capital city.",
        "f0": "France won the world cup in 2018.",
        "s1": "bananas are yellow fruit",
        "x": "Yellow bananas ripen in a week.",
    }
    qrels = [("q1", "e3", 3), ("q1", "e1", 1), ("q2", "f3", 3), ("q2", "dupB", 2), ("q2", "f0", 1), ("s1", "x", 1)]
    write_beir(folder, queries, corpus, qrels, split="test")
    return folder


def read_run_file(path: Path, expected_tag: str = "bm25") -> dict[str, dict[str, float]]:
    run: dict[str, dict[str, float]] = {}
    for line in path.read_text().splitlines():
        query_id, _, corpus_id, _, score, tag = line.split()
        assert tag == expected_tag
        run.setdefault(query_id, {})[corpus_id] = float(score)
    return run


def read_qrels_file(path: Path) -> dict[str, dict[str, int]]:
    """A BEIR qrels TSV (header, then query-id, corpus-id, score), read here rather than by the code under test."""
    qrels: dict[str, dict[str, int]] = {}
    for line in path.read_text().splitlines()[1:]:
        query_id, corpus_id, score = line.split("\t")
        qrels.setdefault(query_id, {})[corpus_id] = int(score)
    return qrels


def bm25_eval(tmp_path: Path, folder: Path, top_k: int, name: str):
    overrides = ["ranker=bm25", f"datasets=[{folder}]", f"evaluation.top_k={top_k}", "evaluation.progress=false"]
    out = tmp_path / name
    return evaluate(compose_config("eval", out, overrides)), out


def test_bm25_eval_gives_what_pytrec_eval_computes_on_its_run_file(tmp_path):
    folder = collection_with_ties_and_a_self_hit(tmp_path / "tiny")
    # top_k=2 cuts q2's ranking inside the five tied duplicates (below f3, which has fewer terms), and a first
    # BM25 pass one deeper than that (plus one for the self-hit) holds only some of them.
    results, out = bm25_eval(tmp_path, folder, top_k=2, name="cut")
    assert json.loads((out / "results.json").read_text()) == results and list(results) == ["tiny"]
    run = read_run_file(out / "runs" / "results-tiny.trec")
    full, _ = bm25_eval(tmp_path, folder, top_k=1000, name="full")
    full_run = read_run_file(tmp_path / "full" / "runs" / "results-tiny.trec")
    tied = [doc for doc in ("dupA", "dupB", "dupC", "dupD", "dupE") if doc in full_run["q2"]]
    assert len({full_run["q2"][doc] for doc in tied}) == 1 and len(tied) == 5
    # The cut keeps the first two of the full ranking as trec_eval orders it: ties by corpus id, descending.
    ranked = sorted(full_run["q2"].items(), key=lambda hit: (hit[1], hit[0]), reverse=True)
    assert list(run["q2"]) == [doc for doc, _ in ranked[:2]] and "dupE" in run["q2"]
    assert "s1" not in run["s1"] and "s1" not in full_run["s1"]  # the query's own passage is not its answer

    qrels = {q: dict(judged) for q, judged in load_split(DatasetSpec(str(folder)), tmp_path).qrels.items()}
    measures = {"ndcg_cut.10", "ndcg_cut.1", "map_cut.100", "recall.100", "P.10", "recip_rank"}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    mean = lambda measure: sum(values[measure] for values in per_query.values()) / len(per_query)  # noqa: E731
    expected = {
        "NDCG@10": "ndcg_cut_10",
        "NDCG@1": "ndcg_cut_1",
        "MAP@100": "map_cut_100",
        "Recall@100": "recall_100",
        "P@10": "P_10",
        "MRR@10": "recip_rank",  # the run holds 2 hits per query: its top 10
    }
    for name, measure in expected.items():
        assert results["tiny"][name] == pytest.approx(mean(measure), abs=1e-12), name
    assert 0 < results["tiny"]["NDCG@10"] < 1

    checks = json.loads((out / "results_checks.json").read_text())["tiny"]
    assert "k1=0.9, b=0.4" in checks["ranker"] and "stemmer=porter" in checks["ranker"]
    assert checks["self_hits_dropped"] == 1 and checks["queries_without_hits"] == 0


def test_train_then_test_compares_base_and_trained_on_the_demo_set_and_cranfield(tmp_path, tiny_model_path, capsys):
    cfg = compose_train_config(tmp_path, tiny_overrides(tiny_model_path) + ["evaluation.progress=false"])
    metrics = train(cfg)
    table = capsys.readouterr().out.split("Test benchmark, base model vs trained:")[1]
    lines = table.strip().splitlines()
    rows = [line.split(" | ")[0].strip("| ") for line in lines[2:] if line.startswith("|")]
    assert rows == ["demo", "cranfield", "**mean**"]
    assert lines[0].endswith("| difference | 95% CI | p (t-test) | n |") and lines[4].endswith("| - | - | - |")
    assert (tmp_path / "comparison.md").read_text().strip() == table.strip()
    for prefix in ("results", "results_base"):
        assert list(json.loads((tmp_path / f"{prefix}.json").read_text())) == ["demo", "cranfield"]
        assert json.loads((tmp_path / f"{prefix}_checks.json").read_text())["cranfield"]["empty_passages"] == 2
        assert (tmp_path / "runs" / f"{prefix}-cranfield.trec").is_file()
    trained = json.loads((tmp_path / "results.json").read_text())
    assert metrics["test/cranfield/NDCG@10"] == trained["cranfield"]["NDCG@10"]

    # comparison.json's tests are what scipy gives on per-query nDCG@10 recomputed from the written files.
    comparison = json.loads((tmp_path / "comparison.json").read_text())
    base = json.loads((tmp_path / "results_base.json").read_text())
    for dataset in cfg.benchmark.datasets:
        row = comparison[dataset.name]
        qrels = read_qrels_file(Path(dataset.path) / "qrels" / f"{dataset.split}.tsv")
        ndcg = {
            prefix: {
                query_id: values["ndcg_cut_10"]
                for query_id, values in pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"})
                .evaluate(read_run_file(tmp_path / "runs" / f"{prefix}-{dataset.name}.trec", tag))
                .items()
            }
            for prefix, tag in (("results", "sycl"), ("results_base", "base"))
        }
        queries = sorted(ndcg["results"])
        assert sorted(ndcg["results_base"]) == queries and row["n"] == len(queries) == len(qrels)
        after, before = ([ndcg[prefix][q] for q in queries] for prefix in ("results", "results_base"))
        differences = [a - b for a, b in zip(after, before, strict=True)]
        expected = scipy.stats.ttest_rel(after, before)
        if len(set(differences)) > 1:
            assert row["p_t"] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-15)
            low, high = expected.confidence_interval(0.95)
            assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), abs=1e-9)
        else:  # no spread: scipy's t is 0/0 or d/0, the comparison says (d, d) and p 1 or 0
            assert (row["ci_low"], row["ci_high"], row["p_t"]) == (
                differences[0],
                differences[0],
                float(not differences[0]),
            )
        assert 0 < row["p_randomization"] <= 1
        assert (row["base"], row["trained"]) == (base[dataset.name]["NDCG@10"], trained[dataset.name]["NDCG@10"])
        assert row["difference"] == pytest.approx(sum(differences) / len(differences), abs=1e-12)

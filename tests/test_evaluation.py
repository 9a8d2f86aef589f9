"""Evaluation: metrics against pytrec_eval, search against brute force, the model-keyed cache, bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pytrec_eval
import torch

from sycl.data import DataFormatError
from sycl.evaluation import DatasetSpec, EvaluationSettings, RetrievalEvaluator, compute_metrics, load_split
from sycl.evaluation.cache import EmbeddingCache
from sycl.evaluation.run import evaluate
from sycl.evaluation.search import exact_search, faiss_search
from sycl.models import DualEncoder
from sycl.models.checkpoint import encoder_from_checkpoint
from tests.beir_fixtures import write_beir
from tests.conftest import CONF_DIR, compose_config

ROOT = Path(CONF_DIR).parent


def random_run_and_qrels(seed=0, queries=8, docs=30):
    rng = np.random.default_rng(seed)
    qrels = {
        f"q{i}": {f"d{j}": int(rng.integers(0, 4)) for j in rng.choice(docs, 6, replace=False)} for i in range(queries)
    }
    run = {f"q{i}": {f"d{j}": float(rng.normal()) for j in range(docs)} for i in range(queries)}
    return qrels, run


def test_metrics_equal_pytrec_eval_computed_independently():
    qrels, run = random_run_and_qrels()
    ours = compute_metrics(qrels, run)
    per_query = pytrec_eval.RelevanceEvaluator(
        qrels, {"ndcg_cut.10", "ndcg_cut.3", "map_cut.100", "recall.10", "P.10"}
    ).evaluate(run)
    mean = lambda key: np.mean([scores[key] for scores in per_query.values()])  # noqa: E731
    assert ours["NDCG@10"] == pytest.approx(mean("ndcg_cut_10"), abs=1e-5)
    assert ours["NDCG@3"] == pytest.approx(mean("ndcg_cut_3"), abs=1e-5)
    assert ours["MAP@100"] == pytest.approx(mean("map_cut_100"), abs=1e-5)
    assert ours["Recall@10"] == pytest.approx(mean("recall_10"), abs=1e-5)
    assert ours["P@10"] == pytest.approx(mean("P_10"), abs=1e-5)
    reciprocal_ranks = []
    for query_id, hits in run.items():
        ranked = sorted(hits, key=lambda d: -hits[d])[:10]
        rank = next((r for r, d in enumerate(ranked, 1) if qrels[query_id].get(d, 0) > 0), None)
        reciprocal_ranks.append(1 / rank if rank else 0.0)
    assert ours["MRR@10"] == pytest.approx(np.mean(reciprocal_ranks), abs=1e-5)
    assert 0 < ours["NDCG@10"] < 1  # random run: neither degenerate extreme


def test_graded_labels_change_ndcg():
    qrels = {"q": {"a": 3, "b": 1}}
    good, swapped = {"q": {"a": 2.0, "b": 1.0}}, {"q": {"a": 1.0, "b": 2.0}}
    assert compute_metrics(qrels, good)["NDCG@10"] == pytest.approx(1.0)
    assert compute_metrics(qrels, swapped)["NDCG@10"] < 0.9
    assert compute_metrics(qrels, swapped)["MRR@10"] == pytest.approx(1.0)  # binary: level 1 is relevant too


@pytest.mark.parametrize("corpus_chunk,query_chunk", [(7, 3), (1000, 1000), (1, 2)])
def test_exact_search_equals_a_brute_force_numpy_ranking(corpus_chunk, query_chunk):
    generator = torch.Generator().manual_seed(0)
    queries, corpus = torch.randn(9, 16, generator=generator), torch.randn(50, 16, generator=generator)
    scores, indices = exact_search(
        queries, corpus, top_k=10, corpus_chunk_size=corpus_chunk, query_chunk_size=query_chunk
    )
    full = queries.numpy() @ corpus.numpy().T
    expected = np.argsort(-full, axis=1)[:, :10]
    assert np.array_equal(indices.numpy(), expected)
    np.testing.assert_allclose(scores.numpy(), np.take_along_axis(full, expected, 1), rtol=1e-5)
    assert exact_search(queries, corpus[:4], top_k=10)[1].shape == (9, 4)  # k capped by the corpus


def test_faiss_backend_returns_the_exact_ranking():
    pytest.importorskip("faiss")
    generator = torch.Generator().manual_seed(1)
    queries, corpus = torch.randn(5, 8, generator=generator), torch.randn(40, 8, generator=generator)
    assert torch.equal(faiss_search(queries, corpus, 7)[1], exact_search(queries, corpus, 7)[1])


def tiny_collection(folder: Path) -> Path:
    queries = {"q1": "how long to boil an egg", "q2": "capital of france"}
    corpus = {
        "e3": "Boil an egg for nine minutes for a firm yolk.",
        "e1": "Eggs are a source of protein.",
        "f3": "Paris is the capital of France.",
        "f0": "France won the world cup in 2018.",
        "x": "Bananas are yellow.",
    }
    write_beir(
        folder, queries, corpus, [("q1", "e3", 3), ("q1", "e1", 1), ("q2", "f3", 3), ("q2", "f0", 1)], split="test"
    )
    return folder


def test_cache_hits_for_the_same_model_and_misses_after_one_optimizer_step(tmp_path, tiny_model_path, monkeypatch):
    split = load_split(DatasetSpec(str(tiny_collection(tmp_path / "c")), "test"), tmp_path)
    evaluator = RetrievalEvaluator(EvaluationSettings(cache_dir=str(tmp_path / "cache"), progress=False))
    encoder = DualEncoder.from_pretrained(tiny_model_path)
    encoded = []
    original = EmbeddingCache.write
    monkeypatch.setattr(EmbeddingCache, "write", lambda self, *a: (encoded.append(1), original(self, *a))[1])
    first, _ = evaluator.evaluate(encoder, split)
    second, _ = evaluator.evaluate(DualEncoder.from_pretrained(tiny_model_path), split)  # same weights, new object
    assert len(encoded) == 1 and first == second
    optimizer = torch.optim.SGD(encoder.parameters(), lr=1e-3)
    batch = encoder.tokenization.passages(["one step"])
    encoder.encode_passages(**batch).sum().backward()
    optimizer.step()
    evaluator.evaluate(encoder, split)
    assert len(encoded) == 2  # a different checkpoint never reuses another's embeddings
    entries = list((tmp_path / "cache").iterdir())
    assert len(entries) == 2 and all((entry / "embeddings.npy").is_file() for entry in entries)  # none partial


def eval_config(tmp_path: Path, overrides: list[str]):
    return compose_config("eval", tmp_path, overrides)


def test_eval_on_a_tiny_beir_folder_writes_results_json_md_and_run(tmp_path, tiny_model_path):
    folder = tiny_collection(tmp_path / "tiny")
    cfg = eval_config(
        tmp_path / "out",
        [f"model.name_or_path={tiny_model_path}", f"datasets=[{folder}]", "split=test", "evaluation.cache_dir=null"],
    )
    results = evaluate(cfg)
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved == results and set(saved["tiny"]) >= {"NDCG@10", "MRR@10", "Recall@1000", "MAP@100", "P@10", "NDCG@1"}
    assert "| tiny |" in (tmp_path / "out" / "results.md").read_text()
    run_lines = (tmp_path / "out" / "runs" / "results-tiny.trec").read_text().splitlines()
    assert len(run_lines) == 2 * 5 and run_lines[0].split()[1:4:2] == ["Q0", "1"]


def test_a_failing_dataset_keeps_the_results_of_the_datasets_before_it(tmp_path, tiny_model_path, caplog):
    first, second, third = (tiny_collection(tmp_path / name) for name in ("first", "second", "third"))
    with open(third / "corpus.jsonl", "a") as handle:
        handle.write('{"_id": "broken", "text": \n')  # found only when the third dataset is read
    datasets = f"datasets=[{first},{second},{third}]"
    cfg = eval_config(
        tmp_path / "out", [f"model.name_or_path={tiny_model_path}", datasets, "evaluation.cache_dir=null"]
    )
    with pytest.raises(DataFormatError, match=r"third/corpus\.jsonl, line 6: not valid JSON"):
        evaluate(cfg)
    out = tmp_path / "out"
    assert list(json.loads((out / "results.json").read_text())) == ["first", "second"]
    assert list(json.loads((out / "results_checks.json").read_text())) == ["first", "second"]
    assert "| second |" in (out / "results.md").read_text()
    assert sorted(path.name for path in (out / "runs").iterdir()) == ["results-first.trec", "results-second.trec"]
    assert f"third failed; the results of first, second are in {out}" in caplog.text


@pytest.mark.slow
def test_eval_py_end_to_end_on_the_demo_test_collection(tmp_path):
    command = [
        sys.executable,
        "eval.py",
        "benchmark=demo",  # the default adds Cranfield: minutes of MiniLM encoding on a CPU
        f"hydra.run.dir={tmp_path}",
        "evaluation.progress=false",
        f"paths.cache_dir={tmp_path}/cache",
    ]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert 0.5 < results["demo"]["NDCG@10"] <= 1.0  # MiniLM is a strong base model on this easy collection
    assert "| demo |" in finished.stdout


@pytest.mark.parametrize(
    "breakage,message",
    [
        ("missing_corpus", r"corpus\.jsonl does not exist"),
        ("empty_split", r"test\.tsv: split 'test' has no judgements"),
        ("fractional_label", r"whole-number labels, got 2\.5"),
    ],
)
def test_bad_datasets_fail_with_the_path_and_leave_no_results(tmp_path, tiny_model_path, breakage, message):
    folder = tiny_collection(tmp_path / "d")
    qrels = folder / "qrels" / "test.tsv"
    if breakage == "missing_corpus":
        (folder / "corpus.jsonl").unlink()
    elif breakage == "empty_split":
        qrels.write_text("query-id\tcorpus-id\tscore\n")
    else:
        qrels.write_text(qrels.read_text() + "q2\tx\t2.5\n")
    cfg = eval_config(tmp_path / "out", [f"model.name_or_path={tiny_model_path}", f"datasets=[{folder}]"])
    with pytest.raises((DataFormatError, FileNotFoundError), match=message):
        evaluate(cfg)
    assert not (tmp_path / "out" / "results.json").exists()


def test_a_folder_that_is_not_a_model_and_a_foreign_checkpoint_are_clear_errors(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("not a model")
    with pytest.raises(OSError, match=r"notes is not a loadable model folder"):
        DualEncoder.from_pretrained(str(tmp_path / "notes"))
    torch.save({"state_dict": {"layer.weight": torch.zeros(1)}}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match=r"other\.ckpt is not a checkpoint of this project"):
        encoder_from_checkpoint(tmp_path / "other.ckpt")


def test_offline_missing_beir_dataset_says_where_to_put_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"place a BEIR-layout folder .* at .*beir/scifact"):
        load_split(DatasetSpec("scifact"), tmp_path / "beir", download=False)

"""Metrics equal trec_eval: one ranking (score, then corpus id descending) for every metric and search backend,
and pytrec_eval run on the written run file and qrels file gives exactly the reported numbers."""

import importlib.util
import json
import logging
import math

import pytest
import pytrec_eval
import torch

from sycl.evaluation import DatasetSpec, EvaluationSettings, compute_metrics, evaluate_datasets, load_split
from sycl.evaluation.metrics import TREC_MEASURES, per_query_metrics, trec_order
from sycl.evaluation.search import exact_search, faiss_search, search_past_ties
from sycl.models import DualEncoder
from tests.beir_fixtures import write_beir


def test_trec_order_breaks_ties_by_corpus_id_descending_as_strcmp_does():
    hits = {"p1": 1.0, "p2": 1.0, "p10": 1.0, "best": 2.0, "é": 0.5, "z": 0.5}
    assert [doc for doc, _ in trec_order(hits)] == ["best", "p2", "p10", "p1", "é", "z"]


def test_mrr_at_10_cuts_the_run_where_trec_eval_ranks_ties():
    qrels = {"q": {"d10": 1}}
    # Nine clear hits, then d10 and d11 tied for rank 10: d11 > d10 as strings, so d11 takes rank 10.
    run = {"q": {**{f"a{i}": 10.0 - i for i in range(9)}, "d10": 0.5, "d11": 0.5}}
    assert compute_metrics(qrels, run)["MRR@10"] == 0.0
    run["q"]["d09"] = run["q"].pop("d11")  # now d10 wins the tie: rank 10
    assert compute_metrics(qrels, run)["MRR@10"] == pytest.approx(0.1)
    assert compute_metrics(qrels, run)["MAP@100"] == pytest.approx(0.1)  # one relevant passage: MAP = MRR


@pytest.mark.parametrize("backend", ["exact", "faiss"])
def test_search_past_ties_returns_every_passage_tied_at_the_cut(backend):
    if backend == "faiss":
        pytest.importorskip("faiss")
    search = faiss_search if backend == "faiss" else exact_search
    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # Rows 1-5 tie for the second place of query 0: a depth-2 cut needs all five to order them by id.
    corpus = torch.tensor([[3.0, 0.0], *[[1.0, 0.0]] * 5, [0.0, 2.0], [0.0, 1.0]])
    scores, indices = search_past_ties(search, queries, corpus, depth=2)
    assert sorted(indices[0][scores[0] == 1.0].tolist()) == [1, 2, 3, 4, 5]
    no_tie = torch.tensor([[3.0, 0.0], [2.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    assert search_past_ties(search, queries[:1], no_tie, depth=2)[1].shape == (1, 3)  # one hit past the cut


def collection_with_every_quirk(folder):
    """Ties (byte-identical passages), a judged passage missing from the corpus, a judged query without a
    text, an unjudged query, graded labels 0-3."""
    queries = {
        "q1": "how long to boil an egg",
        "q2": "capital of france",
        "q3": "why is the sky blue",
        "q-unjudged": "never scored",
    }
    corpus = {
        "e1": "Boil an egg for nine minutes for a firm yolk.",
        "e2": "Boil an egg for nine minutes for a firm yolk.",  # same text as e1: exactly the same score
        "e3": "Eggs are a source of protein.",
        "f1": "Paris is the capital of France.",
        "f2": "Paris is the capital of France.",
        "f3": "France won the world cup in 2018.",
        "s1": "Rayleigh scattering makes the sky look blue.",
        "x1": "Bananas are yellow.",
        "x2": "Bananas are yellow.",
    }
    qrels = [
        ("q1", "e1", 3),
        ("q1", "e3", 1),
        ("q1", "x1", 0),
        ("q2", "f1", 2),
        ("q2", "f-missing", 3),  # not in corpus.jsonl
        ("q2", "f3", 1),
        ("q3", "s1", 3),
        ("q3", "x2", 1),
        ("q-no-text", "e1", 1),  # not in queries.jsonl
    ]
    write_beir(folder, queries, corpus, qrels, split="test")
    return folder


def pytrec_eval_on_files(run_file, qrels_file) -> dict[str, dict[str, float]]:
    """pytrec_eval straight on the two files as written, as a reader of the run would compute it."""
    run, qrels = {}, {}
    for line in run_file.read_text().splitlines():
        query_id, _, corpus_id, _, score, _ = line.split()
        run.setdefault(query_id, {})[corpus_id] = float(score)
    for line in qrels_file.read_text().splitlines()[1:]:
        query_id, corpus_id, label = line.split("\t")
        qrels.setdefault(query_id, {})[corpus_id] = int(label)
    main = pytrec_eval.RelevanceEvaluator(qrels, set(TREC_MEASURES.values())).evaluate(run)
    top10 = {q: dict(sorted(hits.items(), key=lambda h: (h[1], h[0]), reverse=True)[:10]) for q, hits in run.items()}
    mrr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    return {q: {**{n: v[m] for n, m in TREC_MEASURES.items()}, "MRR@10": mrr[q]["recip_rank"]} for q, v in main.items()}


def test_reported_metrics_equal_pytrec_eval_on_the_written_files(tmp_path, tiny_model_path, caplog):
    folder = collection_with_every_quirk(tmp_path / "quirks")
    encoder = DualEncoder.from_pretrained(tiny_model_path)
    reported = {}
    for backend in ("exact", "faiss") if importlib.util.find_spec("faiss") else ("exact",):
        out = tmp_path / backend
        settings = EvaluationSettings(top_k=4, progress=False, backend=backend)  # cut inside the tied pairs
        with caplog.at_level(logging.WARNING):
            results, runs = evaluate_datasets(encoder, [DatasetSpec(str(folder))], settings, tmp_path, output_dir=out)
        reference = pytrec_eval_on_files(out / "runs" / "results-quirks.trec", folder / "qrels" / "test.tsv")
        assert sorted(reference) == ["q1", "q2", "q3"]  # q-no-text: not retrieved, so skipped like trec_eval does
        assert per_query_metrics(load_split(DatasetSpec(str(folder)), tmp_path).qrels, runs["quirks"]) == reference
        assert results["quirks"] == {
            name: math.fsum(v[name] for v in reference.values()) / len(reference) for name in results["quirks"]
        }
        assert json.loads((out / "results.json").read_text()) == results
        found = sum(d in runs["quirks"]["q2"] for d in ("f1", "f3"))
        assert reference["q2"]["Recall@100"] == pytest.approx(found / 3)  # f-missing: relevant, never retrieved
        lines = (out / "runs" / "results-quirks.trec").read_text().splitlines()
        rows = [line.split() for line in lines]
        ties = [(a[2], b[2]) for a, b in zip(rows, rows[1:], strict=False) if a[0] == b[0] and a[4] == b[4]]
        assert ties and all(first > second for first, second in ties)  # tied scores: listed by id, descending
        checks = json.loads((out / "results_checks.json").read_text())["quirks"]
        assert checks["judged_queries_without_text"] == 1 and checks["unjudged_queries_skipped"] == 1
        assert checks["judged_pairs_not_in_corpus"] == 1 and checks["relevant_pairs_not_in_corpus"] == 1
        reported[backend] = (results, [line.split()[:4] for line in lines])  # scores may differ in the last bit
    assert all(report == reported["exact"] for report in reported.values())
    assert "1 judged queries are not in queries.jsonl (e.g. 'q-no-text')" in caplog.text
    assert "1 judged (query, passage) pairs name passages missing from corpus.jsonl (e.g. 'f-missing'" in caplog.text

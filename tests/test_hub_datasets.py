"""Evaluation, mining and generation read hf:// files like local ones, offline, from a hand-built HF cache."""

import json
import re
from pathlib import Path

import pytest
from huggingface_hub import parse_hf_uri
from omegaconf import OmegaConf

from sycl import hub
from sycl.evaluation import DatasetSpec, dataset_specs
from sycl.evaluation.benchmark import benchmark_average
from sycl.evaluation.evaluator import RetrievalEvaluator
from sycl.evaluation.metrics import METRICS
from sycl.evaluation.reports import results_table
from sycl.evaluation.run import evaluate
from sycl.generation.run import load_queries
from sycl.mining import mine
from tests.beir_fixtures import write_beir
from tests.conftest import compose_config
from tests.hub_cache import commit_for, put_file

MSMARCO = "c5a29a104738b98a9e76336939199e264163d4a0"
SCIFACT = "d56462d0e63a25450459c4f213e49ffdb866f7f9"
QUERIES = {"q1": "how long to boil an egg", "q2": "capital of france", "q3": "colour of bananas"}
CORPUS = {
    "e3": "Boil an egg for nine minutes for a firm yolk.",
    "e1": "Eggs are a source of protein.",
    "f3": "Paris is the capital of France.",
    "f0": "France won the world cup in 2018.",
    "x": "Bananas are yellow.",
}
QRELS = [("q1", "e3", 3), ("q1", "e1", 1), ("q2", "f3", 3), ("q2", "f0", 1), ("q3", "x", 2)]
BEIR_14 = [
    "arguana",
    "climate-fever",
    "cqadupstack-android",
    "dbpedia",
    "fever",
    "fiqa",
    "hotpotqa",
    "nfcorpus",
    "nq",
    "quora",
    "scidocs",
    "scifact",
    "touche2020",
    "trec-covid",
]


def local_and_hub_copies(tmp_path: Path, hf_home: Path) -> tuple[Path, str]:
    """A local BEIR folder and the same bytes as an mteb-style Hub folder pinned at SCIFACT; returns both."""
    folder = tmp_path / "scifact"
    write_beir(folder, QUERIES, CORPUS, QRELS, split="test")
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        put_file(hf_home, "mteb/scifact", name, (folder / name).read_bytes(), revision=SCIFACT)
    return folder, f"hf://datasets/mteb/scifact@{SCIFACT}"


def dl20_like_files(tmp_path: Path, hf_home: Path) -> tuple[Path, dict[str, str]]:
    """DL20's shape: a pinned corpus from one repository, unpinned queries and qrels (``qrel.tsv``) from another."""
    folder = tmp_path / "dl20"
    # Another corpus than scifact's: equal bytes would share one embedding-cache entry.
    write_beir(folder, QUERIES, {**CORPUS, "m": "Marathons are 42 km long."}, QRELS[:4], split="test")
    return folder, {
        "corpus": put_file(hf_home, "mteb/msmarco", "corpus.jsonl", (folder / "corpus.jsonl").read_bytes(), MSMARCO),
        "queries": put_file(
            hf_home, "BatsResearch/sycl", "real_data/trec20/queries.jsonl", (folder / "queries.jsonl").read_bytes()
        ),
        "qrels": put_file(
            hf_home, "BatsResearch/sycl", "real_data/trec20/qrel.tsv", (folder / "qrels" / "test.tsv").read_bytes()
        ),
    }


def eval_config(output_dir: Path, model: str, datasets: list[dict]):
    """conf/eval.yaml as eval.py composes it, on ``datasets``, with the tiny model and short texts."""
    entries = ",".join("{" + ",".join(f"{k}:'{v}'" for k, v in entry.items()) + "}" for entry in datasets)
    overrides = [
        f"model.name_or_path={model}",
        "model.query_max_length=16",
        "model.passage_max_length=32",
        f"datasets=[{entries}]",
        "evaluation.progress=false",
    ]
    return compose_config("eval", output_dir, overrides)


def test_eval_on_hub_uris_equals_eval_on_the_same_local_files_and_records_the_commits(
    tmp_path, offline_hub, tiny_model_path
):
    scifact, scifact_uri = local_and_hub_copies(tmp_path, offline_hub)
    dl20, dl20_uris = dl20_like_files(tmp_path, offline_hub)
    local = evaluate(
        eval_config(
            tmp_path / "local",
            tiny_model_path,
            [{"name": "scifact", "path": scifact}, {"name": "trec-dl-2020", "path": dl20, "split": "test"}],
        )
    )
    from_hub = evaluate(
        eval_config(tmp_path / "hub", tiny_model_path, [{"path": scifact_uri}, {"name": "trec-dl-2020", **dl20_uris}])
    )
    assert from_hub == local and list(from_hub) == ["scifact", "trec-dl-2020"]  # the folder URI names the row

    assert json.loads((tmp_path / "hub" / "results.json").read_text()) == from_hub  # metrics only
    saved = json.loads((tmp_path / "hub" / "results_checks.json").read_text())
    assert saved["scifact"]["hub_files"] == {
        f"{scifact_uri}/{name}": SCIFACT for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv")
    }
    assert saved["trec-dl-2020"]["hub_files"] == {
        dl20_uris["corpus"]: MSMARCO,
        dl20_uris["queries"]: commit_for("BatsResearch/sycl"),  # unpinned: the commit main named, as read
        dl20_uris["qrels"]: commit_for("BatsResearch/sycl"),
    }
    assert "hub_files" not in json.loads((tmp_path / "local" / "results_checks.json").read_text())["scifact"]

    # Each corpus's cache entry says where it came from; its key is the corpus bytes, as for a local file.
    entries = [json.loads(path.read_text()) for path in (tmp_path / "hub" / "cache").glob("embeddings/*/entry.json")]
    assert sorted(entry["corpus_source"]["uri"] for entry in entries) == [
        dl20_uris["corpus"],
        f"{scifact_uri}/corpus.jsonl",
    ]
    assert {entry["corpus_source"]["commit"] for entry in entries} == {MSMARCO, SCIFACT}


def test_a_hub_file_missing_offline_stops_evaluation_before_any_encoding(
    tmp_path, offline_hub, tiny_model_path, monkeypatch
):
    _, scifact_uri = local_and_hub_copies(tmp_path, offline_hub)
    missing = f"hf://datasets/mteb/msmarco@{MSMARCO}/qrels/dev.tsv"
    put_file(offline_hub, "mteb/msmarco", "corpus.jsonl", '{"_id": "x", "text": "t"}\n', revision=MSMARCO)
    put_file(offline_hub, "mteb/msmarco", "queries.jsonl", '{"_id": "q", "text": "t"}\n', revision=MSMARCO)
    monkeypatch.setattr(RetrievalEvaluator, "rank", lambda *_: pytest.fail("encoded before the check"))
    msmarco_dev = {"name": "msmarco-dev", "path": f"hf://datasets/mteb/msmarco@{MSMARCO}", "split": "dev"}
    cfg = eval_config(tmp_path / "out", tiny_model_path, [{"path": scifact_uri}, msmarco_dev])
    with pytest.raises(hub.HubFileUnavailable) as raised:
        evaluate(cfg)
    message = str(raised.value)
    assert message.startswith("dataset msmarco-dev: ") and missing in message
    assert f"hf download mteb/msmarco qrels/dev.tsv --repo-type dataset --revision {MSMARCO}" in message
    assert not (tmp_path / "out" / "results.json").exists()


def test_the_reference_benchmark_composes_pinned_with_17_rows_and_a_beir_average_over_14(tmp_path):
    cfg = compose_config("eval", tmp_path, ["benchmark=reference"])
    specs = dataset_specs(cfg.datasets, cfg.split)
    assert [spec.label for spec in specs] == ["msmarco-dev", "trec-dl-2019", "trec-dl-2020", *BEIR_14]
    assert [spec.split for spec in specs[:2]] == ["dev", "test"] and {s.split for s in specs[3:]} == {"test"}
    for spec in specs:
        for given in (spec.path, spec.corpus, spec.queries, spec.qrels):
            if given is None:
                continue
            parsed = parse_hf_uri(given)
            assert parsed.type == "dataset"
            if parsed.id.startswith("mteb/"):
                assert re.fullmatch(r"[0-9a-f]{40}", parsed.revision or ""), given
                assert parsed.id == "mteb/msmarco" or parsed.id.removeprefix("mteb/") == spec.label
    dl20 = specs[2]
    assert dl20.corpus == f"hf://datasets/mteb/msmarco@{MSMARCO}/corpus.jsonl"
    assert (dl20.queries, dl20.qrels) == (
        "hf://datasets/BatsResearch/sycl/real_data/trec20/queries.jsonl",
        "hf://datasets/BatsResearch/sycl/real_data/trec20/qrel.tsv",
    )

    average = benchmark_average(cfg.benchmark.average, specs)
    assert average.name == "BEIR average (14)" and list(average.datasets) == BEIR_14
    results = {spec.label: dict.fromkeys(METRICS, 0.0) for spec in specs}
    for value, label in enumerate(BEIR_14):
        results[label]["NDCG@10"] = float(value)
    results["msmarco-dev"]["NDCG@10"] = 100.0  # would move a mean over all 17 rows
    last = results_table(results, average=average).splitlines()[-1]
    assert last.startswith("| **BEIR average (14)** | 6.5000 |") and "**mean**" not in results_table(
        results, average=average
    )


def test_mine_reads_an_hf_folder_uri_as_it_reads_the_same_local_folder(tmp_path, offline_hub):
    folder = tmp_path / "msmarco"
    write_beir(folder, QUERIES, CORPUS, [("q1", "e3", 1), ("q2", "f3", 1), ("q3", "x", 1)], split="train")
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/train.tsv"):
        put_file(offline_hub, "mteb/msmarco", name, (folder / name).read_bytes(), revision=MSMARCO)
    summaries = {}
    for label, dataset in (("local", folder), ("hub", f"hf://datasets/mteb/msmarco@{MSMARCO}")):
        overrides = ["progress=false", f"dataset={dataset}", "top_k=3", f"output={tmp_path / label}.jsonl"]
        summaries[label] = mine(compose_config("mine", tmp_path / label, overrides))
    assert (tmp_path / "hub.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    assert (
        summaries["hub"]["negatives"] == summaries["local"]["negatives"] > 0 and "hub_files" not in summaries["local"]
    )
    assert summaries["hub"]["hub_files"][f"hf://datasets/mteb/msmarco@{MSMARCO}/qrels/train.tsv"] == MSMARCO


def test_generate_reads_its_queries_and_their_qrels_filter_from_hf_uris(tmp_path, offline_hub):
    lines = "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items())
    queries = put_file(offline_hub, "mteb/msmarco", "queries.jsonl", lines, revision=MSMARCO)
    qrels = put_file(offline_hub, "mteb/msmarco", "qrels/train.tsv", "query-id\tcorpus-id\tscore\nq2\tf3\t1\n", MSMARCO)
    cfg = OmegaConf.create({"queries": queries, "queries_in_qrels": qrels, "max_queries": None})
    assert load_queries(cfg, tmp_path / "out") == {"q2": "capital of france"}
    snapshot = hub.local_path(queries).parent  # writing there would replace the cached input
    with pytest.raises(ValueError, match=rf"would overwrite the input queries={re.escape(queries)}"):
        load_queries(cfg, snapshot)


def test_a_spec_of_files_needs_all_three_and_a_name():
    with pytest.raises(ValueError, match="qrels missing"):
        DatasetSpec(name="dl20", corpus="a.jsonl", queries="b.jsonl")
    with pytest.raises(ValueError, match="needs a name"):
        DatasetSpec(corpus="a.jsonl", queries="b.jsonl", qrels="c.tsv")
    assert DatasetSpec("hf://datasets/BatsResearch/sycl/real_data/trec20").label == "trec20"

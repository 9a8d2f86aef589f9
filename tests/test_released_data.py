"""The four reference experiments read the paper's released data by hf:// URI, as the reference's data_configs do.

Every file lives in a Hugging Face cache built by hand at the reference's exact paths (tests/hub_cache.py), read
offline by huggingface_hub; each experiment, shrunk to the bundled MiniLM, trains real steps from it.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from sycl import hub
from sycl.training import validation
from sycl.training.module import RetrieverModule
from sycl.training.run import train
from tests.conftest import CONF_DIR, compose_train_config
from tests.hub_cache import commit_for, put_file

ROOT = Path(CONF_DIR).parent
MSMARCO, MSMARCO_REVISION = "mteb/msmarco", "c5a29a104738b98a9e76336939199e264163d4a0"
RELEASE = "BatsResearch/sycl"
QUERIES = ["q1", "q2", "q3", "q4"]
# Labels of one group, best first, for every query: METHOD.md's recipe of each setting.
GROUP_LABELS = {
    "real_binary_infonce": [1.0, 0.0, 0.0],
    "synth_binary_infonce": [1.0, 0.0, 0.0],
    "synth_multilevel_wasserstein": [3.0, 2.0, 1.0, 0.0],
    # real positive 3, synthetic 3, 2, 1, two BM25 negatives relabelled 1, synthetic 0
    "synth_plus_real_wasserstein": [3.0, 3.0, 2.0, 1.0, 1.0, 1.0, 0.0],
}


def jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def synthetic_set(hf_home: Path, name: str) -> None:
    """One generator's released lists: a passage per level 3..0 for each query, ids as the release writes them."""
    passages = [
        {"_id": f"{q}-{level}", "title": "", "text": f"{name} level {level} answer to {q}"}
        for q in QUERIES
        for level in range(4)
    ]
    qrels = "query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{q}-{level}\t{level}\n" for q in QUERIES for level in range(4)
    )
    put_file(hf_home, RELEASE, f"{name}/corpus.jsonl", jsonl(passages))
    put_file(hf_home, RELEASE, f"{name}/qrels/train.tsv", qrels)


def released_data(hf_home: Path) -> None:
    """mteb's MS MARCO at the pinned revision, the released BM25 negatives and two synthetic sets."""
    corpus = [{"_id": f"{q}-pos", "title": "", "text": f"the relevant passage for {q}"} for q in QUERIES]
    corpus += [
        {"_id": f"{q}-bm25-{i}", "title": "", "text": f"a lexical match {i} for {q}"} for q in QUERIES for i in range(3)
    ]
    queries = [{"_id": q, "text": f"question {q}"} for q in [*QUERIES, "q-unjudged"]]
    train_qrels = "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{q}-pos\t1\n" for q in QUERIES)
    for path, content in (("corpus.jsonl", jsonl(corpus)), ("queries.jsonl", jsonl(queries))):
        put_file(hf_home, MSMARCO, path, content, revision=MSMARCO_REVISION)
    put_file(hf_home, MSMARCO, "qrels/train.tsv", train_qrels, revision=MSMARCO_REVISION)
    # Dev (MS MARCO dev) and test (TREC DL19, graded) judge the same passages: the experiments' test benchmark.
    for split, grade in (("dev", 1), ("test", 3)):
        qrels = "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{q}-pos\t{grade}\n" for q in QUERIES)
        put_file(hf_home, MSMARCO, f"qrels/{split}.tsv", qrels, revision=MSMARCO_REVISION)
    # Trove's grouped form, one query per line; its "score" is the BM25 rank (1 = top), as the release's card says.
    negatives = [{"qid": q, "docid": [f"{q}-bm25-{i}" for i in range(3)], "score": [1, 2, 3]} for q in QUERIES]
    put_file(hf_home, RELEASE, "real_data/bm25_top_docs/train_qrels.jsonl", jsonl(negatives))
    synthetic_set(hf_home, "llama33_70b")
    synthetic_set(hf_home, "qwen25_72b")


def shrunk(minilm_path: str, experiment: str) -> list[str]:
    """A reference experiment on one CPU with the bundled MiniLM, short texts and 2 optimizer steps, then tested."""
    return [
        f"experiment={experiment}",
        "trainer=cpu",
        "model=minilm",
        f"model.name_or_path={minilm_path}",
        "model.query_max_length=16",
        "model.passage_max_length=32",
        "data.batch_size=2",
        "trainer.max_steps=2",
        "trainer.max_epochs=1",
        "trainer.accumulate_grad_batches=1",
        "logger=csv",
        "~callbacks.retrieval_validation",
        "~callbacks.best_checkpoint",
        "~callbacks.early_stopping",
        "~callbacks.model_checkpoint",
        "callbacks.export_encoder.use_best=false",
    ]


def train_seeing_groups(tmp_path: Path, overrides: list[str], monkeypatch) -> list[dict]:
    """Run train() and return every training batch's passages' labels and texts."""
    seen = []
    original = RetrieverModule.training_step

    def spy(self, batch, batch_idx):
        seen.append({"labels": batch["labels"].clone()})
        return original(self, batch, batch_idx)

    monkeypatch.setattr(RetrieverModule, "training_step", spy)
    train(compose_train_config(tmp_path, overrides))
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("experiment", GROUP_LABELS)
def test_each_reference_experiment_trains_from_the_released_hf_files(
    tmp_path, offline_hub, minilm_path, experiment, monkeypatch
):
    released_data(offline_hub)
    seen = train_seeing_groups(tmp_path, shrunk(minilm_path, experiment), monkeypatch)
    assert len(seen) == 2
    expected = torch.tensor(GROUP_LABELS[experiment])
    assert all(torch.equal(row, expected) for batch in seen for row in batch["labels"])
    # Then tested on MS MARCO dev and DL19 read from the same pinned mteb copy, against the base model.
    comparison = (tmp_path / "comparison.md").read_text()
    assert "| msmarco-dev |" in comparison and "| trec-dl-2019 |" in comparison
    # The run records the commit of every hub file it read, pinned or resolved from main.
    recorded = yaml.safe_load((tmp_path / "csv" / "version_0" / "hparams.yaml").read_text())["hub_files"]
    assert recorded, "no hub file recorded"
    for uri, commit in recorded.items():
        assert commit == (MSMARCO_REVISION if uri.startswith(f"hf://datasets/{MSMARCO}@") else commit_for(RELEASE))


def source_texts(tmp_path: Path, overrides: list[str]) -> dict[str, list[str]]:
    """{source name: every passage text it contributed} for a composed config's datamodule."""
    from hydra.utils import instantiate

    cfg = compose_train_config(tmp_path, overrides)
    datamodule = instantiate(cfg.data, _partial_=True)(tokenization=None)
    datamodule.setup("fit")
    pool = datamodule.train_dataset.sampler.pool
    texts: dict[str, list[str]] = {spec.label: [] for spec in pool.specs}
    for owned in pool.candidates.values():
        for spec, items in zip(pool.specs, owned, strict=True):
            texts[spec.label] += [pool.passage_texts[key] for key, _ in items]
    return texts


def test_one_override_picks_the_released_generator_set(tmp_path, offline_hub):
    released_data(offline_hub)
    default = source_texts(tmp_path, ["experiment=synth_multilevel_wasserstein"])["synthetic"]
    qwen = source_texts(tmp_path, ["experiment=synth_multilevel_wasserstein", "paths.synthetic_set=qwen25_72b"])
    assert all(text.startswith("llama33_70b ") for text in default)
    assert all(text.startswith("qwen25_72b ") for text in qwen["synthetic"]) and len(qwen["synthetic"]) == 16


def test_generated_and_mined_files_replace_the_released_ones(tmp_path, offline_hub):
    released_data(offline_hub)
    generated = tmp_path / "generated"
    (generated / "qrels").mkdir(parents=True)
    (generated / "corpus.jsonl").write_text(
        jsonl([{"_id": f"g-{q}-{level}", "text": f"generated {level} for {q}"} for q in QUERIES for level in range(4)])
    )
    (generated / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n"
        + "".join(f"{q}\tg-{q}-{level}\t{level}\n" for q in QUERIES for level in range(4))
    )
    mined = tmp_path / "bm25_negatives.jsonl"
    mined.write_text(
        jsonl([{"query-id": q, "corpus-ids": [f"{q}-bm25-2", f"{q}-bm25-1"], "scores": [0, 0]} for q in QUERIES])
    )
    texts = source_texts(
        tmp_path,
        [
            "experiment=synth_plus_real_wasserstein",
            f"paths.synthetic_msmarco={generated}",
            f"paths.msmarco_bm25_negatives={mined}",
        ],
    )
    assert all(text.startswith("generated ") for text in texts["synthetic"]) and len(texts["synthetic"]) == 16
    assert sorted(set(texts["bm25_negatives"])) == sorted(
        f"a lexical match {i} for {q}" for q in QUERIES for i in (1, 2)
    )


def test_a_released_file_missing_offline_stops_the_run_before_training_naming_it(tmp_path, offline_hub, minilm_path):
    released_data(offline_hub)
    missing = f"hf://datasets/{RELEASE}/qwen25_32b/corpus.jsonl"
    cfg = compose_train_config(
        tmp_path, [*shrunk(minilm_path, "synth_multilevel_wasserstein"), "paths.synthetic_set=qwen25_32b"]
    )
    with pytest.raises(hub.HubFileUnavailable, match="hf download BatsResearch/sycl qwen25_32b/corpus.jsonl") as raised:
        train(cfg)
    assert missing in str(raised.value)
    assert not (tmp_path / "csv").exists()  # nothing started


def test_model_selection_can_validate_on_a_dev_split_read_from_the_hub(tmp_path, offline_hub, minilm_path, monkeypatch):
    released_data(offline_hub)
    read = []
    original = validation.load_split
    monkeypatch.setattr(validation, "load_split", lambda spec, *a, **k: read.append(spec) or original(spec, *a, **k))
    dev = f"hf://datasets/{MSMARCO}@{MSMARCO_REVISION}"
    overrides = [o for o in shrunk(minilm_path, "synth_multilevel_wasserstein") if "retrieval_validation" not in o]
    selection = [f"callbacks.retrieval_validation.dataset='{dev}'", "callbacks.retrieval_validation.cache_dir=null"]
    metrics = train(compose_train_config(tmp_path, [*overrides, *selection]))
    assert [(spec.path, spec.split) for spec in read] == [(dev, "dev")]
    assert 0 <= metrics["val/ndcg@10"] <= 1


def test_train_py_offline_without_the_released_files_ends_with_one_line_naming_the_command(tmp_path, offline_hub):
    command = [sys.executable, "train.py", "experiment=synth_multilevel_wasserstein", "trainer=cpu", "model=minilm"]
    finished = subprocess.run(
        [*command, f"hydra.run.dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert finished.returncode == 1 and "Traceback" not in finished.stderr
    assert (
        finished.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"train.py: error: hf://datasets/{RELEASE}/llama33_70b/corpus.jsonl is not in the Hugging Face cache"
        )
    )
    assert "`hf download BatsResearch/sycl llama33_70b/corpus.jsonl --repo-type dataset`" in finished.stderr

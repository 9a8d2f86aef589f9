"""The four reference settings and their demo twins: they compose, carry METHOD.md's hyperparameters, relabel
the mixed sources as configured, and the demo twins train end to end."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from sycl.data.beir_files import read_corpus, read_qrels
from sycl.mining import BM25Miner
from sycl.mining.run import output_path
from sycl.training.module import RetrieverModule
from sycl.training.run import train
from tests.conftest import CONF_DIR, compose_config, compose_train_config, tiny_model_overrides
from tests.test_mining import read_lines

ROOT = Path(CONF_DIR).parent
DEMO = ROOT / "data" / "demo"
# name -> (mode, group size, loss class): METHOD.md's "four reference configurations".
REFERENCE = {
    "real_binary_infonce": ("binary", 3, "InfoNCELoss"),
    "synth_binary_infonce": ("binary", 3, "InfoNCELoss"),
    "synth_multilevel_wasserstein": ("multilevel", 4, "WassersteinLoss"),
    "synth_plus_real_wasserstein": ("multilevel", 7, "WassersteinLoss"),
}
EXPERIMENTS = [*REFERENCE, *(f"demo_{name}" for name in REFERENCE)]
# The files of each setting's sources, (corpus, queries, qrels), exactly as the reference's data_configs/*.json.
MSMARCO = "hf://datasets/mteb/msmarco@c5a29a104738b98a9e76336939199e264163d4a0"
RELEASED_NEGATIVES = "hf://datasets/BatsResearch/sycl/real_data/bm25_top_docs/train_qrels.jsonl"
REAL = (f"{MSMARCO}/corpus.jsonl", f"{MSMARCO}/queries.jsonl", f"{MSMARCO}/qrels/train.tsv")
BM25 = (f"{MSMARCO}/corpus.jsonl", f"{MSMARCO}/queries.jsonl", RELEASED_NEGATIVES)
SYNTHETIC = (
    "hf://datasets/BatsResearch/sycl/llama33_70b/corpus.jsonl",
    f"{MSMARCO}/queries.jsonl",
    "hf://datasets/BatsResearch/sycl/llama33_70b/qrels/train.tsv",
)
REFERENCE_FILES = {
    "real_binary_infonce": [REAL, BM25],
    "synth_binary_infonce": [SYNTHETIC, SYNTHETIC],
    "synth_multilevel_wasserstein": [SYNTHETIC],
    "synth_plus_real_wasserstein": [REAL, BM25, SYNTHETIC],
}
# Labels of one group, best first: what each setting's recipe must produce for every demo query.
DEMO_GROUP_LABELS = {
    "real_binary_infonce": [1.0, 0.0, 0.0],
    "synth_binary_infonce": [1.0, 0.0, 0.0],
    "synth_multilevel_wasserstein": [3.0, 2.0, 1.0, 0.0],
    # real positive 3, synthetic 3, 2, 1, two BM25 negatives 1, synthetic 0
    "synth_plus_real_wasserstein": [3.0, 3.0, 2.0, 1.0, 1.0, 1.0, 0.0],
}


def compose(tmp_path: Path, name: str, overrides: list[str] = ()):
    return compose_train_config(tmp_path, [f"experiment={name}", *overrides])


def test_every_experiment_file_is_listed_here():
    assert sorted(p.stem for p in (Path(CONF_DIR) / "experiment").glob("*.yaml")) == sorted(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_each_experiment_composes_and_resolves(tmp_path, name):
    cfg = compose(tmp_path, name)
    for part in ("data", "model", "loss", "module", "trainer", "benchmark"):
        OmegaConf.to_container(cfg[part], resolve=True, throw_on_missing=True)
    assert name.removeprefix("demo_") in cfg.tags


@pytest.mark.parametrize("name", REFERENCE)
def test_reference_settings_carry_the_papers_hyperparameters(tmp_path, name):
    cfg = compose(tmp_path, name)
    mode, group_size, loss = REFERENCE[name]
    assert cfg.model.name_or_path == "facebook/contriever"
    assert (cfg.model.pooling, cfg.model.normalize) == ("mean", False)
    assert (cfg.model.query_max_length, cfg.model.passage_max_length) == (256, 256)
    assert cfg.loss._target_ == f"sycl.losses.{loss}" and cfg.loss.temperature == 1.0
    assert (cfg.module.lr, cfg.module.warmup_fraction, cfg.module.weight_decay) == (1e-5, 0.05, 0.0)
    assert isinstance(cfg.module.lr, float)
    assert cfg.module.gather_across_devices is True
    trainer = cfg.trainer
    assert (trainer.max_epochs, trainer.accumulate_grad_batches, trainer.precision) == (1, 4, "32-true")
    assert (trainer.strategy, trainer.devices, cfg.data.batch_size) == ("ddp", 4, 16)
    assert trainer.devices * cfg.data.batch_size * trainer.accumulate_grad_batches == 256  # queries per update
    assert (cfg.data.mode, cfg.data.group_size, cfg.data.selection) == (mode, group_size, "random")
    files = [(source.corpus, source.queries, source.qrels) for source in cfg.data.sources]
    assert files == REFERENCE_FILES[name]
    assert [(d.path, d.split) for d in cfg.benchmark.datasets] == [(MSMARCO, "dev"), (MSMARCO, "test")]


def test_the_documented_switch_to_mined_negatives_reads_where_mine_py_writes(tmp_path):
    # mine.py writes into its run folder unless told: the README's MS MARCO command names the file that the
    # documented override makes the experiments read instead of the released negatives.
    documented = ["output=data/beir/msmarco/qrels/bm25_negatives.jsonl", "++overwrite=true"]  # a checkout may hold it
    mine_cfg = compose_config("mine", tmp_path, documented)
    assert mine_cfg.miner._target_ == "sycl.mining.BM25Miner"
    assert output_path(mine_cfg).name == f"{BM25Miner.name}_negatives.jsonl"
    switch = [f"paths.msmarco_bm25_negatives={ROOT / output_path(mine_cfg)}"]
    for name in ("real_binary_infonce", "synth_plus_real_wasserstein"):
        qrels = [source.qrels for source in compose(tmp_path, name, switch).data.sources]
        assert str(ROOT / output_path(mine_cfg)) in qrels and RELEASED_NEGATIVES not in qrels
    assert output_path(compose_config("mine", tmp_path, [])) == tmp_path / "bm25_negatives.jsonl"


def recipe(cfg) -> dict:
    """What a setting is made of, paths aside: the sources' filters and relabels, grouping, loss."""
    keys = ("name", "min_score", "max_score", "score_transform", "group_top_k", "group_random_k")
    sources = [{key: source.get(key) for key in keys} for source in cfg.data.sources]
    data = {key: cfg.data[key] for key in ("mode", "group_size", "selection", "positive_threshold", "on_conflict")}
    return {"sources": sources, **data, "loss": cfg.loss._target_}


@pytest.mark.parametrize("name", REFERENCE)
def test_each_demo_twin_has_its_reference_settings_recipe(tmp_path, name):
    assert recipe(compose(tmp_path, f"demo_{name}")) == recipe(compose(tmp_path, name))


def demo_pool(tmp_path: Path, name: str):
    cfg = compose(tmp_path, f"demo_{name}")
    datamodule = instantiate(cfg.data, _partial_=True)(tokenization=None)
    datamodule.setup("fit")
    return datamodule.train_dataset


def test_synth_plus_real_relabels_each_passage_as_configured(tmp_path):
    dataset = demo_pool(tmp_path, "synth_plus_real_wasserstein")
    pool = dataset.sampler.pool
    real, synthetic = read_corpus(DEMO / "real" / "corpus.jsonl"), read_corpus(DEMO / "synthetic" / "corpus.jsonl")
    mined = read_lines(DEMO / "real" / "qrels" / "bm25_negatives.jsonl")
    synthetic_levels = read_qrels(DEMO / "synthetic" / "qrels" / "train.tsv")
    for query_id in ("a01", "c14", "e11"):
        labels = {pool.passage_texts[key]: label for owned in pool.candidates[query_id] for key, label in owned}
        assert labels[real[f"{query_id}-web"]] == 3.0  # real positive: 1 -> 3
        for corpus_id in mined[query_id]["corpus-ids"]:
            assert labels[real[corpus_id]] == 1.0  # BM25 negative: 0 -> 1
        for corpus_id, level in synthetic_levels[query_id].items():
            assert labels[synthetic[corpus_id]] == level  # synthetic level kept
        assert len(labels) == 1 + len(mined[query_id]["corpus-ids"]) + 4
        item = dataset[(dataset.query_ids.index(query_id), 0)]
        assert item["labels"] == DEMO_GROUP_LABELS["synth_plus_real_wasserstein"]
        assert [labels[text] for text in item["passages"]] == item["labels"]
        assert sum(text in real.values() and labels[text] == 1.0 for text in item["passages"]) == 2


def test_real_binary_puts_the_real_positive_first_and_two_bm25_negatives_after(tmp_path):
    dataset = demo_pool(tmp_path, "real_binary_infonce")
    real = read_corpus(DEMO / "real" / "corpus.jsonl")
    mined = read_lines(DEMO / "real" / "qrels" / "bm25_negatives.jsonl")
    for index, query_id in enumerate(dataset.query_ids):
        item = dataset[(index, 1)]
        assert item["labels"] == [1.0, 0.0, 0.0]
        assert item["passages"][0] == real[f"{query_id}-web"]
        negatives = {real[corpus_id] for corpus_id in mined[query_id]["corpus-ids"]}
        assert set(item["passages"][1:]) <= negatives and len(set(item["passages"][1:])) == 2


def tiny_steps(tiny_model_path: str) -> list[str]:
    """A tiny random BERT, short texts, 2 optimizer steps; the export and the demo test benchmark still run."""
    return tiny_model_overrides(tiny_model_path) + [
        "trainer.max_steps=2",
        "trainer.max_epochs=1",
        "logger=csv",
        "evaluation.progress=false",
        "~callbacks.retrieval_validation",
        "~callbacks.best_checkpoint",
        "~callbacks.early_stopping",
        "~callbacks.model_checkpoint",
        "callbacks.export_encoder.use_best=false",
    ]


@pytest.mark.parametrize("name", REFERENCE)
def test_each_demo_twin_trains_real_steps_then_tests(tmp_path, tiny_model_path, name, monkeypatch):
    seen_labels = []
    original = RetrieverModule.training_step

    def spy(self, batch, batch_idx):
        seen_labels.append(batch["labels"].clone())
        return original(self, batch, batch_idx)

    monkeypatch.setattr(RetrieverModule, "training_step", spy)
    cfg = compose(tmp_path, f"demo_{name}", tiny_steps(tiny_model_path))
    initial = {k: v.clone() for k, v in instantiate(cfg.model).state_dict().items()}
    metrics = train(cfg)
    assert len(seen_labels) == 2 and torch.isfinite(torch.tensor(metrics["train/loss"]))
    expected = torch.tensor(DEMO_GROUP_LABELS[name])
    assert all(torch.equal(row, expected) for labels in seen_labels for row in labels)
    trained = instantiate(cfg.model, name_or_path=str(tmp_path / "model")).state_dict()
    assert sum(not torch.equal(trained[k], v) for k, v in initial.items()) > 10  # real optimizer steps
    assert "| demo |" in (tmp_path / "comparison.md").read_text()  # then tested against the base model

"""One base model: eval.py's default is train.py's base-model row, with the same settings, number and embedding
cache; a folder exported by train.py is still evaluated with the settings saved in it."""

import json
import logging

import pytest
from hydra.utils import instantiate

from sycl.config import bundled_minilm_path
from sycl.evaluation.run import evaluate, warn_if_saved_settings_disagree
from sycl.models import DualEncoder
from sycl.training.run import train
from tests.conftest import compose_config, compose_train_config, tiny_model_overrides


@pytest.mark.parametrize("choice", [[], ["model=contriever"]], ids=["default", "contriever"])
def test_eval_and_train_compose_the_same_model_config(tmp_path, choice):
    train_model = compose_train_config(tmp_path, choice).model
    eval_model = compose_config("eval", tmp_path, choice).model
    assert eval_model == train_model
    assert (eval_model.query_max_length, eval_model.passage_max_length) == ((64, 128) if not choice else (256, 256))


def test_train_base_row_and_eval_default_give_one_number_from_one_cache(tmp_path, tiny_model_path, caplog):
    cache = tmp_path / "cache"
    model = [o for o in tiny_model_overrides(tiny_model_path) if o.startswith("model.")]
    shared = [*model, "benchmark=demo", f"evaluation.cache_dir={cache}"]
    train_overrides = ["data.batch_size=4", "trainer.max_steps=1", "logger=csv", "trainer.enable_progress_bar=false"]
    train(compose_train_config(tmp_path / "train", shared + train_overrides))
    base = json.loads((tmp_path / "train" / "results_base.json").read_text())["demo"]
    cached = sorted(entry / "embeddings.npy" for entry in cache.iterdir())
    written = [path.stat().st_mtime_ns for path in cached]

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sycl.evaluation.cache"):
        results = evaluate(compose_config("eval", tmp_path / "eval", shared + ["evaluation.progress=false"]))
    assert results["demo"] == base
    assert "corpus embeddings loaded from cache" in caplog.text
    assert sorted(entry / "embeddings.npy" for entry in cache.iterdir()) == cached
    assert [path.stat().st_mtime_ns for path in cached] == written  # nothing encoded anew


def test_an_exported_folder_is_evaluated_with_the_settings_saved_in_it(tmp_path, tiny_model_path, caplog):
    folder = tmp_path / "export"
    DualEncoder.from_pretrained(
        tiny_model_path, pooling="cls", query_max_length=16, passage_max_length=32
    ).save_pretrained(folder)
    overrides = [f"model.name_or_path={folder}"]

    with caplog.at_level(logging.WARNING, logger="sycl.evaluation.run"):
        encoder = instantiate(compose_config("eval", tmp_path / "eval", overrides).ranker)
    assert (encoder.settings.pooling, encoder.settings.normalize) == ("cls", False)
    assert (encoder.settings.query_max_length, encoder.settings.passage_max_length) == (16, 32)
    assert "not model.pooling='mean', model.normalize=True, model.query_max_length=64" in caplog.text

    group = instantiate(
        compose_config("eval", tmp_path / "eval", overrides + ["ranker.settings_from_folder=false"]).ranker
    )
    assert (group.settings.pooling, group.settings.query_max_length, group.settings.passage_max_length) == (
        "mean",
        64,
        128,
    )


def test_a_sentence_transformers_folder_read_otherwise_than_it_was_saved_is_warned_about(tmp_path, caplog):
    # A CLS-pooled, unnormalised sentence-transformers folder (as msmarco-bert-base-dot models are), evaluated with
    # MiniLM's group (mean pooling, normalised): the figures would be wrong, so the log says how to match them.
    folder = tmp_path / "st_model"
    folder.mkdir()
    (folder / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            ]
        )
    )
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    encoder = DualEncoder.from_pretrained(bundled_minilm_path(), pooling="mean", normalize=True)
    with caplog.at_level(logging.WARNING, logger="sycl.evaluation.run"):
        warn_if_saved_settings_disagree(str(folder), encoder)
    assert "pooling='cls', normalize=False" in caplog.text and "model.pooling=cls model.normalize=False" in caplog.text

    caplog.clear()  # the bundled MiniLM as its group reads it: pooling and normalisation agree, lengths may differ
    with caplog.at_level(logging.WARNING, logger="sycl.evaluation.run"):
        warn_if_saved_settings_disagree(bundled_minilm_path(), encoder)
    assert caplog.text == ""

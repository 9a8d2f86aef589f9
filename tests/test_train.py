"""The composed train.yaml runs real optimizer steps, exports a loadable model and resumes where it stopped."""

import json
from pathlib import Path

import pytest
import torch
from hydra.errors import MissingConfigException
from lightning import Callback
from sentence_transformers import SentenceTransformer

from sycl.data import DataFormatError
from sycl.models import DualEncoder
from sycl.training.run import train
from tests.conftest import compose_train_config, tiny_model_overrides

BASELINE = ["loss=infonce", "data=demo_binary"]


def tiny_overrides(tiny_model_path: str, steps: int = 2) -> list[str]:
    return tiny_model_overrides(tiny_model_path) + [f"trainer.max_steps={steps}", "trainer.max_epochs=1", "logger=csv"]


@pytest.mark.parametrize("setting", [["loss=wasserstein"], BASELINE], ids=["wasserstein", "infonce"])
def test_each_loss_trains_and_exports_a_loadable_model(tmp_path, tiny_model_path, setting, capsys):
    cfg = compose_train_config(tmp_path, tiny_overrides(tiny_model_path, steps=3) + setting)
    initial = DualEncoder.from_pretrained(tiny_model_path).query_model.state_dict()
    metrics = train(cfg)
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))
    assert metrics["train/queries_per_sec"] > 0
    trained = DualEncoder.from_pretrained(str(tmp_path / "model"))
    changed = [k for k, v in trained.query_model.state_dict().items() if not torch.equal(v, initial[k])]
    assert len(changed) > 10  # real optimizer steps moved the weights
    assert trained.settings.query_max_length == 16  # the run's settings travel with the export
    assert SentenceTransformer(str(tmp_path / "model"), device="cpu").encode(["a query"]).shape == (1, 32)
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    # Train-then-test: both models on the demo test collection, side by side.
    printed = capsys.readouterr().out
    assert "| dataset | base NDCG@10 | trained NDCG@10 | difference |" in printed and "| demo |" in printed
    trained = json.loads((tmp_path / "results.json").read_text())["demo"]["NDCG@10"]
    base = json.loads((tmp_path / "results_base.json").read_text())["demo"]["NDCG@10"]
    assert metrics["test/demo/NDCG@10"] == trained and trained != base
    assert 0 <= metrics["val/ndcg@10"] <= 1


class StopAfter(Callback):
    """Stops training after ``steps`` optimizer steps, as a killed job would (after its checkpoint)."""

    def __init__(self, steps: int):
        self.steps = steps

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step >= self.steps:
            trainer.should_stop = True


def final_weights(run_dir: Path) -> dict:
    return DualEncoder.from_pretrained(str(run_dir / "model")).query_model.state_dict()


def test_resume_from_a_mid_epoch_checkpoint_continues_where_it_stopped(tmp_path, tiny_model_path):
    overrides = tiny_overrides(tiny_model_path, steps=5) + ["callbacks.model_checkpoint.every_n_train_steps=2"]
    train(compose_train_config(tmp_path / "straight", overrides))

    # Interrupt a second run after step 2 (mid-epoch: 120 demo queries make 30 batches of 4)...
    stop = ["+callbacks.stop_after._target_=tests.test_train.StopAfter", "+callbacks.stop_after.steps=2"]
    train(compose_train_config(tmp_path / "stopped", overrides + stop))
    checkpoint = tmp_path / "stopped" / "checkpoints" / "last.ckpt"
    assert torch.load(checkpoint, weights_only=False)["global_step"] == 2

    # ...then resume it: the result must equal the uninterrupted run, batch for batch.
    train(compose_train_config(tmp_path / "resumed", overrides + [f"ckpt_path={checkpoint}"]))
    straight, resumed = final_weights(tmp_path / "straight"), final_weights(tmp_path / "resumed")
    for name, value in straight.items():
        torch.testing.assert_close(resumed[name], value, msg=f"{name} differs after resuming")


def test_dropout_is_active_during_training_steps(tmp_path, minilm_path, monkeypatch):
    from sycl.training.module import RetrieverModule

    seen = []
    original = RetrieverModule.training_step

    def spy(self, batch, batch_idx):
        seen.append([m.training for m in self.encoder.modules() if isinstance(m, torch.nn.Dropout)])
        return original(self, batch, batch_idx)

    monkeypatch.setattr(RetrieverModule, "training_step", spy)
    overrides = [
        "trainer.max_steps=1",
        "logger=csv",
        "data.batch_size=2",
        "model.passage_max_length=16",
        "model.query_max_length=8",
        "~callbacks",
    ]
    train(compose_train_config(tmp_path, overrides))
    assert seen and seen[0] and all(seen[0])


@pytest.mark.slow
@pytest.mark.parametrize("setting", [["loss=wasserstein"], BASELINE], ids=["wasserstein", "infonce"])
def test_minilm_trains_a_few_real_steps(tmp_path, setting):
    overrides = [
        "trainer.max_steps=2",
        "trainer.max_epochs=1",
        "logger=wandb",
        "data.batch_size=4",
        "model.passage_max_length=64",
        "model.query_max_length=16",
        # Evaluation with MiniLM has its own test (test_evaluation.py): only the training path here.
        "~benchmark",
        "~callbacks.retrieval_validation",
        "~callbacks.best_checkpoint",
        "~callbacks.early_stopping",
    ] + setting
    metrics = train(compose_train_config(tmp_path, overrides))
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))
    assert SentenceTransformer(str(tmp_path / "model"), device="cpu").encode(["query"]).shape == (1, 384)
    assert list((tmp_path / "wandb").glob("offline-run-*")), "the offline W&B run was not written"


def test_unknown_loss_name_is_a_config_error(tmp_path):
    with pytest.raises(MissingConfigException, match="loss/nonsense"):
        compose_train_config(tmp_path, ["loss=nonsense"])


def test_bad_training_data_fails_before_any_step(tmp_path, tiny_model_path):
    bad = tmp_path / "train.tsv"
    bad.write_text("query-id\tcorpus-id\tscore\na01\ta01-L3\tthree\n")
    cfg = compose_train_config(tmp_path, tiny_overrides(tiny_model_path) + [f"data.sources.0.qrels={bad}"])
    with pytest.raises(DataFormatError, match=r"train\.tsv, line 2, field 'score'"):
        train(cfg)
    assert not (tmp_path / "checkpoints").exists()

"""A run resumed from the step checkpoint of an epoch's last batch, which is written before that epoch's validation
and epoch end, validates that epoch exactly once and ends like the uninterrupted run: same training steps,
validations, logged metrics, best checkpoint and exported model; so does a second resume, from the epoch end that the
first one reached."""

import json
from pathlib import Path

import pytest
import torch
from lightning import Callback
from safetensors.torch import load_file

from sycl.training import RetrievalValidation
from sycl.training.run import train
from tests.conftest import compose_train_config
from tests.test_fault_injection import logged_metrics
from tests.test_training_loop import graded_queries, recorded_steps, resume_overrides  # noqa: F401  (a fixture)

# resume_overrides: 8 queries in batches of 2, so 4 steps per epoch, 2 epochs, and a step checkpoint after every step.
# The checkpoint of step 4 is written in on_train_batch_end of epoch 0's last batch, before epoch 0 is validated.
LAST_BATCH_STEP = 4
RECORDS = ("retrieval_validation.jsonl", "validation_loop.jsonl")


class RecordedRetrievalValidation(RetrievalValidation):
    """``RetrievalValidation`` that appends every epoch's score (epoch, global step, val/ndcg@10) to ``record``."""

    def __init__(self, record: str, **kwargs):
        super().__init__(**kwargs)
        self.record = Path(record)

    def _validate(self, trainer, pl_module) -> None:
        super()._validate(trainer, pl_module)
        entry = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        append(self.record, entry | {"ndcg@10": float(trainer.callback_metrics["val/ndcg@10"])})


class ValidationLoopRecorder(Callback):
    """Appends every run of Lightning's validation loop (epoch, global step, val/loss) to ``record``."""

    def __init__(self, record: str):
        self.record = Path(record)

    def on_validation_epoch_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            entry = {"epoch": trainer.current_epoch, "step": trainer.global_step}
            append(self.record, entry | {"loss": float(trainer.callback_metrics["val/loss"])})


def append(path: Path, entry: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(entry) + "\n")


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def recorded_run(
    model: str, data: Path, folder: Path, validation_loop: bool, extra: list[str], run_dir: Path | None = None
) -> None:
    """One ``train()`` of the resume setting in ``run_dir`` (``folder``/run by default): steps and validations
    recorded in ``folder``, and a full checkpoint at every epoch end in ``folder``/epoch_end, to resume from."""
    overrides = resume_overrides(model, data, folder / "steps", validation_loop) + [
        f"callbacks.retrieval_validation._target_={__name__}.RecordedRetrievalValidation",
        f"+callbacks.retrieval_validation.record={folder / RECORDS[0]}",
        f"+callbacks.validation_loop._target_={__name__}.ValidationLoopRecorder",
        f"+callbacks.validation_loop.record={folder / RECORDS[1]}",
        "+callbacks.epoch_end_checkpoint._target_=lightning.pytorch.callbacks.ModelCheckpoint",
        f"+callbacks.epoch_end_checkpoint.dirpath={folder / 'epoch_end'}",
        "+callbacks.epoch_end_checkpoint.save_top_k=-1",
        "+callbacks.epoch_end_checkpoint.every_n_epochs=1",
        "+callbacks.epoch_end_checkpoint.save_on_train_epoch_end=true",
    ]
    train(compose_train_config(run_dir or folder / "run", overrides + extra))


def crash_after_epoch_0s_last_batch(
    model: str, data: Path, folder: Path, validation_loop: bool, extra: list[str]
) -> Path:
    """A run that dies before step 4, leaving the step-4 checkpoint as its last.ckpt; returns that checkpoint."""
    crash = [
        "+callbacks.crash._target_=tests.test_training_loop.CrashBefore",
        f"+callbacks.crash.step={LAST_BATCH_STEP}",
    ]
    with pytest.raises(RuntimeError, match="simulated crash"):
        recorded_run(model, data, folder, validation_loop, crash + extra)
    last = folder / "run" / "checkpoints" / "last.ckpt"
    loops = torch.load(last, map_location="cpu", weights_only=False)["loops"]["fit_loop"]
    assert loops["epoch_progress"]["current"]["processed"] == 0  # the setting under test: written inside epoch 0,
    assert loops["epoch_loop.batch_progress"]["is_last_batch"]  # after its last batch
    return last


def assert_same_training_and_model_selection(folder: Path, reference: Path, run_dir: Path | None = None) -> None:
    """The steps the reference run trained from the first that ``folder`` recorded on, and, in ``run_dir``
    (``folder``/run by default), the same best checkpoint and exported model."""
    trained = recorded_steps(folder / "steps")
    assert trained == recorded_steps(reference / "steps")[trained[0]["step"] :]
    run_dir = run_dir or folder / "run"
    best = sorted(path.name for path in (reference / "run" / "checkpoints").glob("best-*.ckpt"))
    assert sorted(path.name for path in (run_dir / "checkpoints").glob("best-*.ckpt")) == best
    exported = load_file(run_dir / "model" / "model.safetensors")
    expected = load_file(reference / "run" / "model" / "model.safetensors")
    assert exported.keys() == expected.keys()
    assert all(torch.equal(exported[name], value) for name, value in expected.items())


@pytest.mark.parametrize("validation_loop", [False, True], ids=["retrieval_validation_only", "validation_loop"])
def test_a_resume_after_an_epochs_last_batch_validates_that_epoch_once(
    tmp_path,
    tiny_model_path,
    graded_queries,  # noqa: F811
    validation_loop,
):
    straight, crashed, resumed, again = (tmp_path / name for name in ("straight", "crashed", "resumed", "again"))
    recorded_run(tiny_model_path, graded_queries, straight, validation_loop, [])
    last = crash_after_epoch_0s_last_batch(tiny_model_path, graded_queries, crashed, validation_loop, [])

    recorded_run(tiny_model_path, graded_queries, resumed, validation_loop, [f"ckpt_path='{last}'"])
    # From the checkpoint on, the resumed run validates what the uninterrupted run did, each epoch once, value for
    # value (the base model's score, at step 0, comes before the checkpoint).
    for record in RECORDS:
        expected = [entry for entry in records(straight / record) if entry["step"] >= LAST_BATCH_STEP]
        assert records(resumed / record) == expected, record
    assert [entry["epoch"] for entry in records(resumed / RECORDS[0])] == [0, 1]
    # And logs the same metrics at the same logging steps. Those count batches from 0: the checkpoint's batch logged
    # its training metrics at step 3 before the checkpoint was written, and epoch 0's validation is logged at 3 after.
    checkpoint_batch = str(LAST_BATCH_STEP - 1)
    expected = {
        (step, metric): value
        for (step, metric), value in logged_metrics(straight / "run").items()
        if int(step) > int(checkpoint_batch) or (step == checkpoint_batch and metric.startswith("val/"))
    }
    assert logged_metrics(resumed / "run") == expected
    assert_same_training_and_model_selection(resumed, straight)

    # The resumed run's own epoch-0 end is a checkpoint like the uninterrupted run's: resumed, it goes on to epoch 1
    # without validating epoch 0 a second time. In a new run directory, as train.py starts one: the best checkpoint
    # and its score come along (sycl.training.BestCheckpoint), so model selection still compares against epoch 0.
    epoch_end = resumed / "epoch_end" / f"epoch=0-step={LAST_BATCH_STEP}.ckpt"
    recorded_run(tiny_model_path, graded_queries, again, validation_loop, [f"ckpt_path='{epoch_end}'"])
    for record in RECORDS:
        assert records(again / record) == [entry for entry in records(straight / record) if entry["epoch"] >= 1]
    assert_same_training_and_model_selection(again, straight)


def test_a_resume_after_the_last_batch_of_an_epoch_without_validation_trains_what_the_run_did(
    tmp_path,
    tiny_model_path,
    graded_queries,  # noqa: F811
):
    # Validation after every other epoch: none follows epoch 0's last batch, so Lightning must not be told one is
    # under way (it would go on to draw a batch past the epoch's end).
    every_other = ["trainer.check_val_every_n_epoch=2"]
    straight, crashed, resumed = (tmp_path / name for name in ("straight", "crashed", "resumed"))
    recorded_run(tiny_model_path, graded_queries, straight, True, every_other)
    last = crash_after_epoch_0s_last_batch(tiny_model_path, graded_queries, crashed, True, every_other)
    recorded_run(tiny_model_path, graded_queries, resumed, True, every_other + [f"ckpt_path='{last}'"])
    assert records(resumed / RECORDS[1]) == records(straight / RECORDS[1])  # the one validation, after epoch 1
    assert_same_training_and_model_selection(resumed, straight)


def test_without_retrieval_validation_the_resumed_run_still_validates_that_epoch_once(
    tmp_path,
    tiny_model_path,
    graded_queries,  # noqa: F811
):
    # Model selection on val/loss alone: the fix on load is the module's, not a callback's that a run may drop.
    by_loss = [
        "callbacks.retrieval_validation=null",
        "callbacks.best_checkpoint.monitor=val/loss",
        "callbacks.best_checkpoint.mode=min",
        "callbacks.early_stopping.monitor=val/loss",
        "callbacks.early_stopping.mode=min",
    ]
    straight, crashed, resumed = (tmp_path / name for name in ("straight", "crashed", "resumed"))
    recorded_run(tiny_model_path, graded_queries, straight, True, by_loss)
    last = crash_after_epoch_0s_last_batch(tiny_model_path, graded_queries, crashed, True, by_loss)
    recorded_run(tiny_model_path, graded_queries, resumed, True, by_loss + [f"ckpt_path='{last}'"])
    expected = [entry for entry in records(straight / RECORDS[1]) if entry["step"] >= LAST_BATCH_STEP]
    assert [entry["epoch"] for entry in expected] == [0, 1]
    assert records(resumed / RECORDS[1]) == expected
    assert_same_training_and_model_selection(resumed, straight)

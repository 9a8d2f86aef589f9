"""A job's W&B run is closed as failed when the job fails, and as finished when it succeeds.

Read back from the offline run file, as W&B will show it after ``wandb sync``.
"""

import json
from pathlib import Path

from sycl.experiments.failures import FAILURE_FILE, run_recording_failure
from sycl.training.run import train
from tests.conftest import compose_train_config
from tests.wandb_records import exit_code


def tiny_wandb_job(tmp_path: Path, tiny_model_path: str, batch_size: int):
    return compose_train_config(
        tmp_path,
        [
            f"model.name_or_path={tiny_model_path}",
            "model.query_max_length=16",
            "model.passage_max_length=32",
            "trainer.max_steps=1",
            "trainer.max_epochs=1",
            "logger=wandb",
            f"data.batch_size={batch_size}",
            "~benchmark",
            "~callbacks.retrieval_validation",
            "~callbacks.best_checkpoint",
            "~callbacks.early_stopping",
        ],
    )


def run_file(output_dir: Path) -> Path:
    (path,) = output_dir.glob("wandb/offline-run-*/run-*.wandb")
    return path


def test_a_job_failing_in_training_is_closed_in_wandb_as_failed_and_recorded(tmp_path, tiny_model_path):
    """A multirun job: the Wasserstein loss refuses a batch of one query in the first step."""
    cfg = tiny_wandb_job(tmp_path, tiny_model_path, batch_size=1)
    assert run_recording_failure(lambda: train(cfg), tmp_path, continue_on_failure=True) is None
    failure = json.loads((tmp_path / FAILURE_FILE).read_text())
    assert failure["error"] == "ValueError" and "at least 2 queries" in failure["message"]
    assert exit_code(run_file(tmp_path)) == 1


def test_a_job_that_succeeds_is_closed_in_wandb_as_finished(tmp_path, tiny_model_path):
    train(tiny_wandb_job(tmp_path, tiny_model_path, batch_size=4))
    assert not (tmp_path / FAILURE_FILE).exists()
    assert exit_code(run_file(tmp_path)) == 0

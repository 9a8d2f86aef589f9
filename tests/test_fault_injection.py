"""`python train.py` killed with SIGKILL at chosen points, then resumed from last.ckpt, ends exactly like a run
that was never interrupted: same final weights, same exported model, same logged metrics."""

import csv
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lightning import Callback
from safetensors.torch import load_file

from sycl.config import repo_root
from sycl.files import atomic_writer
from sycl.training.checkpoint_io import ResumableCheckpointIO
from tests.test_training_loop import graded_queries  # noqa: F401  (a fixture)

TIMINGS = {"train/queries_per_sec"}  # wall-clock measurements: the only logged values that may differ


class KillAt(Callback):
    """SIGKILLs its own process in ``hook`` at global step ``step``: no cleanup, no exception handling.

    Lightning runs checkpoint callbacks after every other callback, so a kill in ``on_train_batch_end``
    comes after the optimizer step and before that step's checkpoint.
    """

    def __init__(self, step: int, hook: str):
        self.step, self.hook = step, hook

    def _maybe_kill(self, trainer, hook: str) -> None:
        if hook == self.hook and trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)

    def on_train_batch_start(self, trainer, *args):
        self._maybe_kill(trainer, "on_train_batch_start")

    def on_train_batch_end(self, trainer, *args):
        self._maybe_kill(trainer, "on_train_batch_end")


class KilledMidWriteCheckpointIO(ResumableCheckpointIO):
    """Writes half of the ``last.ckpt`` of global step ``step`` to its temporary file, then SIGKILLs the job."""

    def __init__(self, step: int):
        super().__init__()
        self.step = step

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        if Path(path).name != "last.ckpt" or checkpoint["global_step"] != self.step:
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        data = io.BytesIO()
        torch.save(checkpoint, data)
        with atomic_writer(path, "wb") as handle:
            handle.write(data.getvalue()[: data.tell() // 2])
            handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)


def run_train(
    run_dir: Path, model: str, data: Path, extra: list[str], benchmark: bool = False
) -> subprocess.CompletedProcess:
    """``python train.py`` on the 8 graded queries: batches of 2 (4 steps per epoch), 2 epochs, a checkpoint
    after every step, retrieval validation and a best checkpoint, CSV metrics; the demo benchmark if asked."""
    source = (
        f"{{name: tiny, corpus: {data}/corpus.jsonl, queries: {data}/queries.jsonl, qrels: {data}/qrels/train.tsv}}"
    )
    command = [
        sys.executable,
        "train.py",
        f"hydra.run.dir={run_dir}",
        f"paths.log_dir={run_dir.parent / 'logs'}",
        f"paths.cache_dir={run_dir / 'cache'}",
        f"model.name_or_path={model}",
        "model.query_max_length=16",
        "model.passage_max_length=32",
        "logger=csv",
        "trainer.enable_progress_bar=false",
        f"data.sources=[{source}]",
        "data.val_sources=null",
        "data.batch_size=2",
        "data.group_size=2",
        "trainer.max_epochs=2",
        "callbacks.model_checkpoint.every_n_train_steps=1",
        *([] if benchmark else ["~benchmark"]),
        *extra,
    ]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(command, cwd=repo_root(), env=environment, capture_output=True, text=True, timeout=600)


def logged_metrics(run_dir: Path) -> dict[tuple[str, str], str]:
    """(step, metric) -> value from every CSV log of the run, timings left out."""
    values = {}
    for log in sorted(run_dir.glob("csv/version_*/metrics.csv")):
        with log.open() as handle:
            for row in csv.DictReader(handle):
                for metric, value in row.items():
                    if value and metric not in TIMINGS | {"step", "epoch"}:
                        values[(row["step"], metric)] = value
    return values


def checkpoint_weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


@pytest.fixture(scope="module")
def uninterrupted_run(tmp_path_factory, tiny_model_path, graded_queries) -> Path:  # noqa: F811
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    result = run_train(run_dir, tiny_model_path, graded_queries, [])
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


KILLS = {
    # Before step 3: last.ckpt is step 3's, mid-epoch 0.
    "mid_epoch": ["+callbacks.kill._target_=tests.test_fault_injection.KillAt", "+callbacks.kill.step=3"]
    + ["+callbacks.kill.hook=on_train_batch_start"],
    # After epoch 0's last optimizer step (global step 4), before its checkpoint and the epoch end.
    "after_last_batch": ["+callbacks.kill._target_=tests.test_fault_injection.KillAt", "+callbacks.kill.step=4"]
    + ["+callbacks.kill.hook=on_train_batch_end"],
    # Half-way through writing step 4's last.ckpt.
    "mid_checkpoint_write": [
        "trainer.plugins=[{_target_: tests.test_fault_injection.KilledMidWriteCheckpointIO, step: 4}]"
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("kill", KILLS)
def test_a_run_killed_anywhere_resumes_to_the_uninterrupted_result(
    tmp_path,
    tiny_model_path,
    graded_queries,  # noqa: F811
    uninterrupted_run,
    kill,
):
    killed = tmp_path / "killed"
    result = run_train(killed, tiny_model_path, graded_queries, KILLS[kill])
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    last = killed / "checkpoints" / "last.ckpt"
    torch.load(last, map_location="cpu", weights_only=False)  # whole, whatever was being written

    resumed = tmp_path / "resumed"
    result = run_train(resumed, tiny_model_path, graded_queries, [f"ckpt_path={last}"])
    assert result.returncode == 0, result.stderr[-3000:]

    final = checkpoint_weights(resumed / "checkpoints" / "last.ckpt")
    reference = checkpoint_weights(uninterrupted_run / "checkpoints" / "last.ckpt")
    assert final.keys() == reference.keys()
    for name, value in reference.items():
        assert torch.equal(final[name], value), f"{name} differs from the uninterrupted run"
    exported, reference_export = (
        load_file(resumed / "model" / "model.safetensors"),
        load_file(uninterrupted_run / "model" / "model.safetensors"),
    )
    assert all(torch.equal(exported[name], value) for name, value in reference_export.items())
    # From the checkpoint's step on, the resumed run logs what the uninterrupted run logged, value for value
    # (the killed run's own CSV rows die with it: CSVLogger writes at the end).
    start = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    expected = {key: value for key, value in logged_metrics(uninterrupted_run).items() if int(key[0]) >= start}
    assert logged_metrics(resumed) == expected


@pytest.mark.slow
def test_the_same_command_twice_gives_byte_identical_results(tmp_path, tiny_model_path, graded_queries):  # noqa: F811
    short = ["trainer.max_steps=3", "trainer.max_epochs=1", "evaluation.progress=false"]
    outputs = []
    for attempt in ("first", "second"):
        run_dir = tmp_path / attempt
        result = run_train(run_dir, tiny_model_path, graded_queries, short, benchmark=True)
        assert result.returncode == 0, result.stderr[-3000:]
        outputs.append(run_dir)
    first, second = outputs
    compared = ["results.json", "results_base.json", "comparison.md", "runs/results-demo.trec"]
    for name in compared:
        assert (first / name).read_bytes() == (second / name).read_bytes(), f"{name} differs between two runs"

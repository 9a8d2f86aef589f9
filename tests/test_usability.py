"""Works the way Lightning and Hydra users expect: Trainer arguments override without `+`, the debug presets of
lightning-hydra-template, quiet output that ends with the test table, and a --help per entry point."""

import csv
import inspect
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import wandb
import yaml
from lightning import Trainer
from omegaconf import OmegaConf

from sycl.config import repo_root
from sycl.training.run import build_trainer, train
from tests.conftest import CONF_DIR, compose_config, compose_train_config, tiny_model_overrides

TRAINER_OVERRIDES = [
    "trainer.max_steps=2",
    "trainer.fast_dev_run=true",
    "trainer.limit_train_batches=2",
    "trainer.val_check_interval=0.5",
]
DEBUG_PRESETS = sorted(path.stem for path in (Path(CONF_DIR) / "debug").glob("*.yaml"))


@pytest.mark.parametrize("override", TRAINER_OVERRIDES)
@pytest.mark.parametrize("trainer", ["cpu", "ddp"])
def test_common_trainer_arguments_override_without_plus(tmp_path, override, trainer):
    key, value = override.split("=")
    cfg = compose_train_config(tmp_path, [f"trainer={trainer}", override])
    assert OmegaConf.select(cfg, key) == yaml.safe_load(value)


def test_every_trainer_key_is_a_trainer_argument_and_builds_one(tmp_path):
    cfg = compose_train_config(tmp_path, ["trainer=ddp_multinode"])
    unknown = set(cfg.trainer) - {"_target_"} - set(inspect.signature(Trainer.__init__).parameters)
    assert not unknown, f"not arguments of lightning.Trainer: {unknown}"
    trainer = build_trainer(compose_train_config(tmp_path, TRAINER_OVERRIDES[:1]).trainer, logger=False)
    assert trainer.max_steps == 2 and not trainer.fast_dev_run and trainer.limit_train_batches == 1.0


# The spelling these keys needed before they were listed in conf/trainer/cpu.yaml, as public bug reports and
# scripts written then use it: Hydra accepts `+` for a key whose value is null, and build_trainer drops the nulls.
OLDER_SPELLING = [
    "+trainer.max_steps=8",
    "+trainer.enable_progress_bar=false",
    "+trainer.limit_train_batches=2",
    "+trainer.strategy=ddp_spawn",
    "+trainer.val_check_interval=0.5",
    "+trainer.accumulate_grad_batches=2",
]


def test_the_older_plus_spelling_of_trainer_arguments_still_overrides_them(tmp_path):
    trainer = build_trainer(compose_train_config(tmp_path, OLDER_SPELLING).trainer, logger=False)
    assert (trainer.max_steps, trainer.limit_train_batches, trainer.val_check_interval) == (8, 2, 0.5)
    assert trainer.accumulate_grad_batches == 2
    smoke = build_trainer(compose_train_config(tmp_path, ["+trainer.fast_dev_run=true"]).trainer, logger=False)
    assert smoke.fast_dev_run and smoke.max_steps == 1
    assert type(trainer.strategy).__name__ == "DDPStrategy" and trainer.progress_bar_callback is None
    # Left null, the same keys take Lightning's own defaults.
    default = build_trainer(compose_train_config(tmp_path, []).trainer, logger=False)
    assert (default.max_steps, default.limit_train_batches, default.accumulate_grad_batches) == (-1, 1.0, 1)
    assert default.progress_bar_callback is not None and not default.fast_dev_run


@pytest.mark.parametrize("preset", DEBUG_PRESETS)
def test_each_debug_preset_turns_off_export_benchmark_wandb_and_checkpoints(tmp_path, preset):
    # On top of an experiment for 4 GPUs: the preset comes last and wins.
    cfg = compose_config(
        "train", tmp_path, [f"debug={preset}", "experiment=synth_plus_real_wasserstein"], keep_hydra=True
    )
    assert "/logs/debug/runs/" in str(cfg.hydra.run.dir)
    assert cfg.benchmark is None and list(cfg.logger) == ["csv"]
    callbacks = {name for name, entry in cfg.callbacks.items() if entry is not None}
    assert not callbacks & {"export_encoder", "model_checkpoint", "best_checkpoint"}
    # Early stopping only where its metric, val/ndcg@10, is computed.
    assert "early_stopping" not in callbacks or "retrieval_validation" in callbacks
    assert (cfg.trainer.accelerator, cfg.trainer.devices, cfg.trainer.strategy) == ("cpu", 1, "auto")
    assert cfg.trainer.detect_anomaly and cfg.data.num_workers == 0


@pytest.mark.parametrize("preset", ["fdr", "limit"])
def test_a_debug_run_trains_and_leaves_no_model_results_checkpoints_or_wandb(tmp_path, tiny_model_path, preset):
    metrics = train(compose_train_config(tmp_path, [f"debug={preset}", *tiny_model_overrides(tiny_model_path)]))
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))
    for output in ("model", "results.json", "wandb", "checkpoints"):
        assert not (tmp_path / output).exists(), output
    if preset == "limit":  # 2 epochs of 3 batches, each validated on Cranfield dev
        rows = list(csv.DictReader((tmp_path / "csv" / "version_0" / "metrics.csv").open()))
        assert max(int(row["step"]) for row in rows if row["train/loss"]) == 5
        assert len([row for row in rows if row["val/ndcg@10"]]) == 3  # the base model's, then each epoch's


def test_overfit_trains_the_same_batches_every_epoch(tmp_path, tiny_model_path):
    record = tmp_path / "record"
    overrides = [
        "debug=overfit",
        *tiny_model_overrides(tiny_model_path),
        "trainer.max_epochs=3",
        "module.lr=1e-3",
        "+callbacks.recorder._target_=tests.test_training_loop.StepRecorder",
        f"+callbacks.recorder.folder={record}",
    ]
    train(compose_train_config(tmp_path / "run", overrides))
    steps = [yaml.safe_load(line) for line in (record / "rank0.jsonl").read_text().splitlines()]
    epochs = [[(s["qids"], s["labels"]) for s in steps if s["epoch"] == epoch] for epoch in range(3)]
    assert len(epochs[0]) == 3 and all(epoch == epochs[0] for epoch in epochs)
    rows = list(csv.DictReader((tmp_path / "run" / "csv" / "version_0" / "metrics.csv").open()))
    losses = [float(row["train/loss"]) for row in rows if row["train/loss"]]
    assert sum(losses[-3:]) < sum(losses[:3])


def test_a_default_run_is_quiet_and_ends_with_the_test_table(tmp_path, tiny_model_path, capfd, caplog, monkeypatch):
    monkeypatch.delenv("WANDB_SILENT", raising=False)  # the config alone must keep W&B quiet
    steps = ["trainer.max_steps=2", "trainer.max_epochs=1", "benchmark=demo"]
    overrides = tiny_model_overrides(tiny_model_path) + steps
    with caplog.at_level(logging.INFO):
        train(compose_train_config(tmp_path, overrides))
    out, err = capfd.readouterr()
    for chatter in ("litlogger", "Total FLOPs", "Loading weights", "wandb sync", "anonymous setting"):
        assert chatter not in out + err + caplog.text, chatter
    assert out.rstrip().splitlines()[-1].startswith("p with a trailing * is below 0.05")
    assert list((tmp_path / "wandb").glob("offline-run-*"))
    # Each evaluation line names its model.
    assert f"evaluating trained model {tmp_path / 'model'} on demo" in caplog.text
    assert f"evaluating base model {tiny_model_path} on demo" in caplog.text


def test_verbose_brings_the_model_summary_tips_and_wandb_output_back(
    tmp_path, tiny_model_path, capfd, caplog, monkeypatch
):
    monkeypatch.delenv("WANDB_SILENT", raising=False)
    # wandb's process-wide setup keeps the environment an earlier run of this process saw (WANDB_SILENT from
    # conftest): start a fresh one, as a new python process would.
    wandb.teardown()
    overrides = tiny_model_overrides(tiny_model_path) + ["trainer.max_steps=1", "~callbacks", "verbose=true"]
    with caplog.at_level(logging.INFO):
        train(compose_train_config(tmp_path, overrides))
    out, err = capfd.readouterr()
    for chatter in ("litlogger", "Total FLOPs", "wandb sync"):
        assert chatter in out + err + caplog.text, chatter


def config_groups_in_help(script: str) -> set[str]:
    """The groups that ``python <script> --help`` offers, from its "Configuration groups" section."""
    env = {**os.environ, "PYTHONPATH": str(Path(repo_root()) / "src")}
    shown = subprocess.run(
        [sys.executable, script, "--help"], cwd=repo_root(), env=env, capture_output=True, text=True, check=True
    ).stdout
    section = shown.split("== Configuration groups ==")[1].split("== Config ==")[0]
    return {line.split(":")[0] for line in section.splitlines() if ": " in line}


@pytest.mark.parametrize(
    "script, own, foreign",
    [
        ("train.py", {"data", "loss", "model", "trainer", "debug", "experiment"}, {"generator", "miner", "prompts"}),
        ("eval.py", {"ranker", "model", "benchmark", "evaluation"}, {"loss", "data", "trainer", "generator", "miner"}),
        ("generate.py", {"generator", "prompts"}, {"loss", "data", "miner", "ranker"}),
        ("mine.py", {"miner"}, {"loss", "data", "generator", "prompts"}),
    ],
)
def test_help_lists_only_the_entry_points_own_config_groups(script, own, foreign):
    groups = config_groups_in_help(script)
    assert own <= groups and not foreign & groups

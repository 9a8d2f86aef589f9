"""Multiruns keep going past a failing job, give every job its own outputs and W&B run, and report."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sycl.experiments.runs import read_runs
from sycl.experiments.wandb_report import create_wandb_report
from tests.conftest import CONF_DIR, compose_config
from tests.wandb_records import run_record

ROOT = Path(CONF_DIR).parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def multirun(
    tmp_path: Path, tiny_model_path: str, sweep_dir: Path, overrides: list[str]
) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "train.py",
        "-m",
        f"hydra.sweep.dir={sweep_dir}",
        f"model.name_or_path={tiny_model_path}",
        "trainer.max_steps=2",
        "trainer.max_epochs=1",
        "data.batch_size=4",
        "model.passage_max_length=32",
        "evaluation.progress=false",
        f"paths.cache_dir={tmp_path}/cache",
        *overrides,
    ]
    environment = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HF_HUB_OFFLINE": "1"}
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, env=environment)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory, tiny_model_path) -> Path:
    """A real 2 x 2 multirun (loss x seed) through train.py's command line."""
    tmp_path = tmp_path_factory.mktemp("sweep")
    multirun(
        tmp_path, tiny_model_path, tmp_path / "sweep", ["loss=infonce,wasserstein", "seed=1,2", "group=tiny_sweep"]
    )
    return tmp_path / "sweep"


def test_each_job_has_its_own_results_and_wandb_run_in_the_configured_group(sweep_dir):
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0", "1", "2", "3"]
    names = set()
    for job in jobs:
        results = json.loads((job / "results.json").read_text())
        assert 0 <= results["demo"]["NDCG@10"] <= 1
        wandb_files = list((job / "wandb").glob("offline-run-*/run-*.wandb"))
        assert len(wandb_files) == 1, "one W&B run per job"
        record = run_record(wandb_files[0])
        assert record.run_group == "tiny_sweep" and record.job_type == "train"
        names.add(record.display_name)
    assert len(names) == 4  # named after each job's overrides


def test_a_failing_job_is_recorded_and_does_not_stop_the_sweep(tmp_path, tiny_model_path):
    finished = multirun(tmp_path, tiny_model_path, tmp_path / "sweep", ["data.train_fraction=5.0,1.0", "group=failing"])
    failure = json.loads((tmp_path / "sweep" / "0" / "failed.json").read_text())
    assert failure["error"] == "ValueError" and "train_fraction=5.0" in failure["message"]
    assert (tmp_path / "sweep" / "1" / "results.json").is_file()
    assert "the sweep continues" in finished.stderr + finished.stdout
    records, _ = read_runs([tmp_path / "sweep"])
    assert [bool(r.failure) for r in records] == [True, False]


def test_report_lists_every_run_with_non_empty_plots(sweep_dir, tmp_path):
    finished = subprocess.run(
        [sys.executable, "report.py", str(sweep_dir), "--output", str(tmp_path / "report")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    markdown = (tmp_path / "report" / "report.md").read_text()
    for job in ("0", "1", "2", "3"):
        assert f"\n| {job} | loss=" in markdown
    assert "| loss=infonce | " in markdown and "| loss=wasserstein | " in markdown  # mean +- std rows
    for image in ("ndcg_by_setting.png", "train_loss.png"):
        data = (tmp_path / "report" / image).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
    assert "<table>" in (tmp_path / "report" / "report.html").read_text()


def test_analysis_notebook_runs_top_to_bottom_on_the_sweep_into_html(sweep_dir, tmp_path):
    # Through its opener, as the README says to run it: executed by nbclient, saved by nbconvert.
    finished = subprocess.run(
        [sys.executable, "-m", "sycl.experiments.notebook", str(sweep_dir), "--output", str(tmp_path / "a.html")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    html = (tmp_path / "a.html").read_text()
    assert "A = loss=wasserstein" in html and "B = loss=infonce" in html  # the printed comparison
    assert html.count("data:image/png;base64,") >= 2  # the plots, inline


@pytest.mark.parametrize("preset", sorted(p.stem for p in (Path(CONF_DIR) / "sweep").glob("*.yaml")))
def test_every_sweep_preset_composes_with_its_parameters(preset, tmp_path):
    cfg = compose_config("train", tmp_path, [f"sweep={preset}"], keep_hydra=True)
    assert cfg.group == preset and "seed" in cfg.hydra.sweeper.params


def test_optuna_preset_composes_and_optimizes_the_dev_metric(tmp_path):
    cfg = compose_config("train", tmp_path, ["hparams_search=optuna"], keep_hydra=True)
    assert cfg.optimized_metric == "val/ndcg@10" and cfg.hydra.sweeper.direction == "maximize"
    assert "OptunaSweeper" in cfg.hydra.sweeper._target_


def test_wandb_report_offline_says_so(monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert create_wandb_report(None, "sycl", "tiny_sweep", "title") is None
    assert "W&B is offline" in capsys.readouterr().out

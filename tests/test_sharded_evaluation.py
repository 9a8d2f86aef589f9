"""eval.py spread over two gloo processes gives one process's results, and resumes slice by slice."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CONF_DIR

ROOT = Path(CONF_DIR).parent


def eval_py(tmp_path: Path, tiny_model_path: str, name: str, extra: list[str]) -> Path:
    """``python eval.py`` on the demo test set and Cranfield's test queries with the tiny model; its run dir."""
    run_dir = tmp_path / name
    command = [
        sys.executable,
        "eval.py",
        f"model.name_or_path={tiny_model_path}",
        "model.query_max_length=16",
        "model.passage_max_length=32",
        "evaluation.progress=false",
        f"evaluation.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return run_dir


TWO_PROCESSES = ["evaluation.devices=2", "evaluation.accelerator=cpu"]


@pytest.mark.slow
def test_two_processes_give_one_process_results_and_resume_slice_by_slice(tmp_path, tiny_model_path):
    single = eval_py(tmp_path, tiny_model_path, "single", ["evaluation.cache_dir=null"])
    double = eval_py(tmp_path, tiny_model_path, "double", TWO_PROCESSES)
    assert json.loads((double / "results.json").read_text()) == json.loads((single / "results.json").read_text())
    for dataset in ("demo", "cranfield"):  # the same ranked passages, with the same scores
        run_file = Path("runs") / f"results-{dataset}.trec"
        assert (double / run_file).read_text() == (single / run_file).read_text()

    # One cache entry per slice: a run killed after one slice's encoding resumes with the other slice only.
    slices = {path.name: path.stat().st_mtime_ns for path in (tmp_path / "cache").glob("*-slice*of2.pt")}
    assert len(slices) == 4  # 2 datasets x 2 slices
    lost = sorted(slices)[0]
    (tmp_path / "cache" / lost).unlink()
    again = eval_py(tmp_path, tiny_model_path, "again", TWO_PROCESSES)
    kept = {path.name: path.stat().st_mtime_ns for path in (tmp_path / "cache").glob("*-slice*of2.pt")}
    assert {name for name in kept if kept[name] != slices.get(name)} == {lost}  # only the lost slice re-encoded
    assert (again / "results.json").read_text() == (double / "results.json").read_text()

"""eval.py spread over two gloo processes gives one process's results, and resumes slice by slice."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
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

    # One cache entry per slice: a run killed while encoding a slice resumes with that slice only.
    cache = tmp_path / "cache"
    slices = {path.name: (path / "embeddings.npy").stat().st_mtime_ns for path in cache.glob("*-slice*of2")}
    assert len(slices) == 4  # 2 datasets x 2 slices
    lost = sorted(slices)[0]
    # What a killed process leaves: its partial folder, under the name of a process that no longer runs.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    partial = cache / f"{lost}.partial-{socket.gethostname().replace('-', '_')}-{dead.stdout.strip()}-0"
    (cache / lost).rename(partial)
    again = eval_py(tmp_path, tiny_model_path, "again", TWO_PROCESSES)
    kept = {path.name: (path / "embeddings.npy").stat().st_mtime_ns for path in cache.glob("*-slice*of2")}
    assert {name for name in kept if kept[name] != slices.get(name)} == {lost}  # only the lost slice re-encoded
    assert not partial.exists() and not list(cache.glob("*.partial-*"))
    assert (again / "results.json").read_text() == (double / "results.json").read_text()


@pytest.mark.slow
def test_a_float16_store_gives_two_processes_one_process_results(tmp_path, tiny_model_path):
    half = ["evaluation.embedding_dtype=float16"]
    single = eval_py(tmp_path, tiny_model_path, "single", half)
    double = eval_py(tmp_path, tiny_model_path, "double", [*half, *TWO_PROCESSES])
    assert json.loads((double / "results.json").read_text()) == json.loads((single / "results.json").read_text())
    entries = [path for path in (tmp_path / "cache").iterdir() if path.is_dir()]
    assert len(entries) == 6  # 2 datasets x (1 whole corpus + 2 slices)
    assert {str(np.load(path / "embeddings.npy", mmap_mode="r").dtype) for path in entries} == {"float16"}

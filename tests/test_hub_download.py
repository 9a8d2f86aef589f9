"""hf:// files downloaded for real by huggingface_hub from a local stand-in Hub: once per node, commit recorded."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import CONF_DIR
from tests.fake_hub_server import FakeHub
from tests.test_released_data import MSMARCO, MSMARCO_REVISION, RELEASE, released_data

ROOT = Path(CONF_DIR).parent
RELEASE_COMMIT = "5" * 40


def served_files(tmp_path: Path) -> tuple[dict, dict]:
    """The released-data fixture of test_released_data as the stand-in Hub serves it: {(repo, path): bytes}."""
    built = tmp_path / "built"
    released_data(built)
    files, commits = {}, {MSMARCO: MSMARCO_REVISION, RELEASE: RELEASE_COMMIT}
    for repo_id in commits:
        snapshots = built / "hub" / f"datasets--{repo_id.replace('/', '--')}" / "snapshots"
        for path in snapshots.glob("*/**/*"):
            if path.is_file():
                files[(repo_id, path.relative_to(next(snapshots.iterdir())).as_posix())] = path.read_bytes()
    return files, commits


@pytest.mark.slow
def test_two_ddp_processes_download_each_released_file_once_and_record_its_commit(tmp_path, minilm_path):
    files, commits = served_files(tmp_path)
    run_dir = tmp_path / "run"
    with FakeHub(files, commits) as server:
        env = {**os.environ, "HF_ENDPOINT": server.url, "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "0"}
        env.pop("HF_HUB_CACHE", None)
        command = [
            sys.executable,
            "train.py",
            "experiment=synth_plus_real_wasserstein",
            "trainer=cpu",
            "trainer.strategy=ddp",
            "trainer.devices=2",
            "trainer.max_steps=1",
            "trainer.max_epochs=1",
            "trainer.accumulate_grad_batches=1",
            "model=minilm",
            f"model.name_or_path={minilm_path}",
            "model.query_max_length=16",
            "model.passage_max_length=32",
            "data.batch_size=2",
            "logger=csv",
            "~callbacks",
            f"hydra.run.dir={run_dir}",
        ]
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        downloads, requests = dict(server.downloads), dict(server.requests)
    # Only the files the sources name, each fetched by one process while the other waited and read the cache:
    # one metadata request and one download per file, none from the second process.
    named = {(MSMARCO, p) for p in ("corpus.jsonl", "queries.jsonl", "qrels/train.tsv")} | {
        (RELEASE, p)
        for p in (
            "real_data/bm25_top_docs/train_qrels.jsonl",
            "llama33_70b/corpus.jsonl",
            "llama33_70b/qrels/train.tsv",
        )
    }
    assert downloads == dict.fromkeys(named, 1)
    assert requests == {(method, *file): 1 for file in named for method in ("HEAD", "GET")}
    recorded = yaml.safe_load(next(run_dir.glob("csv/*/hparams.yaml")).read_text())["hub_files"]
    assert recorded["hf://datasets/BatsResearch/sycl/llama33_70b/corpus.jsonl"] == RELEASE_COMMIT
    assert recorded[f"hf://datasets/{MSMARCO}@{MSMARCO_REVISION}/corpus.jsonl"] == MSMARCO_REVISION

""".gitignore hides what the entry points write and nothing the repository ships."""

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CONF_DIR

ROOT = Path(CONF_DIR).parent
# What runs leave in a checkout: run folders, W&B, downloads, caches, generated data.
OUTPUTS = [
    "logs/train/runs/2026-01-01_00-00-00/checkpoints/last.ckpt",
    "logs/mine/runs/2026-01-01_00-00-00/bm25_negatives.jsonl",
    "outputs/2026-01-01/00-00-00/.hydra/config.yaml",
    "notebooks/wandb/run-1/files/config.yaml",
    "data/beir/msmarco/corpus.jsonl",
    "data/cache/embeddings.npy",
    "data/synthetic/msmarco/journal.jsonl",
    "model.ckpt",
]


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def tracked() -> list[str]:
    if shutil.which("git") is None or git("rev-parse", "--is-inside-work-tree").stdout.strip() != "true":
        pytest.skip("not a git checkout")
    return git("ls-files").stdout.splitlines()


def test_no_tracked_file_is_ignored(tracked):
    assert {"conf/train.yaml", "conf/mine.yaml", "data/demo/synthetic/corpus.jsonl"} <= set(tracked)
    matched = git("check-ignore", "--no-index", "--verbose", *tracked)
    assert matched.stdout == "", f"tracked files matched by .gitignore:\n{matched.stdout}"


def test_run_outputs_are_ignored(tracked):
    matched = git("check-ignore", "--no-index", *OUTPUTS)
    assert matched.stdout.splitlines() == OUTPUTS

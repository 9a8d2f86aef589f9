"""A Hugging Face cache built by hand: the offline stand-in for files the reference names by hf:// URI.

huggingface_hub keeps a repository's files under ``<HF_HOME>/hub/<type>s--<org>--<name>/snapshots/<commit>/<path>``
and the commit that ``main`` pointed at under ``refs/main``. With HF_HUB_OFFLINE set it reads exactly these
paths, so a test that writes them exercises the real resolution code without a network.
"""

import hashlib
from pathlib import Path

import huggingface_hub.constants
import pytest


def commit_for(repo_id: str, tag: str = "main") -> str:
    """A stable 40-hex commit id for a repository: what the cache would record for its ``main``."""
    return hashlib.sha1(f"{repo_id}@{tag}".encode()).hexdigest()


def put_file(
    hf_home: Path,
    repo_id: str,
    path_in_repo: str,
    content: str | bytes,
    revision: str | None = None,
    repo_type: str = "dataset",
) -> str:
    """Write one file into the cache at ``hf_home`` and return its ``hf://`` URI.

    With a ``revision`` (a 40-hex commit) the URI pins it; without one the file goes under the commit
    ``commit_for(repo_id)``, which ``refs/main`` then names, and the URI has no ``@``.
    """
    commit = revision or commit_for(repo_id)
    repo_folder = Path(hf_home) / "hub" / f"{repo_type}s--{repo_id.replace('/', '--')}"
    target = repo_folder / "snapshots" / commit / path_in_repo
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content, encoding="utf-8")
    if revision is None:
        (repo_folder / "refs").mkdir(parents=True, exist_ok=True)
        (repo_folder / "refs" / "main").write_text(commit)
    return f"hf://{repo_type}s/{repo_id}{f'@{revision}' if revision else ''}/{path_in_repo}"


@pytest.fixture
def offline_hub(tmp_path, monkeypatch) -> Path:
    """An empty HF_HOME in offline mode, for this process (huggingface_hub's constants) and any child process."""
    hf_home = tmp_path / "hf_home"
    (hf_home / "hub").mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HOME", str(hf_home))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return hf_home

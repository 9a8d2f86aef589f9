"""Corpus embeddings on disk: one folder per corpus (or corpus slice), memory-mapped for writing and searching.

A folder holds ``embeddings.npy`` ([N, H] float32 or float16, NumPy's .npy format, so any tool reads it with
``numpy.load(..., mmap_mode="r")``), ``ids.json`` (the N passage ids, row by row) and ``entry.json`` (rows, dim,
dtype and where the corpus came from). It is written under a temporary name beside its final one and renamed
into place when complete: a reader sees a whole folder or none, and a killed run leaves only a ``*.partial-*``
folder, which the next write of that entry removes.

Searching reads the memory-mapped rows a chunk at a time (``sycl.evaluation.search.exact_search``), so the
embeddings take page cache, which the kernel can reclaim, rather than process memory.
"""

import json
import os
import shutil
import socket
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

EMBEDDINGS_FILE = "embeddings.npy"
IDS_FILE = "ids.json"
ENTRY_FILE = "entry.json"
STORE_DTYPES = {"float32": np.float32, "float16": np.float16}


class PartialStore:
    """An entry being written: ``allocate`` creates its memory-mapped array, ``commit`` renames it into place."""

    def __init__(self, folder: Path, dtype: str):
        if dtype not in STORE_DTYPES:
            raise ValueError(f"evaluation.embedding_dtype={dtype!r} is not one of {tuple(STORE_DTYPES)}")
        self.folder = folder
        self.dtype = dtype
        remove_abandoned(folder)
        self.partial = folder.parent / f"{partial_prefix(folder)}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.partial.mkdir(parents=True)
        self.array: np.memmap | None = None

    def allocate(self, rows: int, dim: int) -> torch.Tensor:
        """The [rows, dim] tensor to write into, backed by the entry's ``embeddings.npy``."""
        self.array = np.lib.format.open_memmap(
            self.partial / EMBEDDINGS_FILE, mode="w+", dtype=STORE_DTYPES[self.dtype], shape=(rows, dim)
        )
        return torch.from_numpy(self.array)

    def commit(self, ids: list[str], source: dict[str, str] | None = None) -> torch.Tensor:
        """Write the ids and the entry description, move the folder into place, and return its embeddings
        [N, H], memory-mapped. With no rows written (an empty slice), the array is [0, 0]."""
        if self.array is None:
            self.allocate(0, 0)
        self.array.flush()
        rows, dim = self.array.shape
        if rows != len(ids):
            raise ValueError(f"{len(ids)} ids for {rows} embedding rows")
        del self.array
        (self.partial / IDS_FILE).write_text(json.dumps(ids))
        entry = {"rows": rows, "dim": dim, "dtype": self.dtype} | ({"corpus_source": source} if source else {})
        (self.partial / ENTRY_FILE).write_text(json.dumps(entry, indent=2) + "\n")
        try:
            self.partial.rename(self.folder)
        except OSError:  # written meanwhile by another run of the same model on the same corpus: keep that one
            shutil.rmtree(self.partial, ignore_errors=True)
        return open_embeddings(self.folder)

    def discard(self) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)


def remove_abandoned(folder: Path) -> None:
    """Remove the partial folders of ``folder`` left by killed processes of this machine. A partial folder of a
    live process (another run writing the same entry) or of another machine (a shared file system) is left alone.
    """
    for partial in folder.parent.glob(f"{partial_prefix(folder)}*"):
        pid = int(partial.name.split("-")[-2])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(partial, ignore_errors=True)
        except PermissionError:  # alive, another user's
            pass


def partial_prefix(folder: Path) -> str:
    """How the partial folders of ``folder`` written on this machine are named: ``<name>.partial-<host>-``, followed
    by the writer's pid and a random tag (a hostname's dashes become underscores, so the pid is the second-last
    dash-separated field)."""
    return f"{folder.name}.partial-{socket.gethostname().replace('-', '_')}-"


def open_embeddings(folder: Path) -> torch.Tensor:
    """The [N, H] embeddings of a complete entry, memory-mapped copy-on-write (the file is never changed)."""
    return torch.from_numpy(np.load(folder / EMBEDDINGS_FILE, mmap_mode="c"))


def stored_ids(folder: Path) -> list[str] | None:
    """The ids of a complete entry, None when there is none."""
    try:
        return json.loads((folder / IDS_FILE).read_text())
    except FileNotFoundError:
        return None


def write_entry(
    folder: Path,
    ids: list[str],
    dtype: str,
    encode: Callable[[Callable[[int, int], torch.Tensor]], object],
    source: dict[str, str] | None = None,
) -> torch.Tensor:
    """Run ``encode(allocate)`` into a new entry at ``folder`` and return its memory-mapped embeddings [N, H].

    ``encode`` calls ``allocate(N, H)`` once and fills the tensor it returns. On any error (or Ctrl-C) the partial
    folder is removed and the error goes on.
    """
    partial = PartialStore(folder, dtype)
    try:
        encode(partial.allocate)
        return partial.commit(ids, source)
    except BaseException:
        partial.discard()
        raise

"""Atomic file writes: a reader never sees a half-written file, and a failed write leaves the old one."""

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_writer(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Yield a handle on a temporary file next to ``path``; on success sync it and rename it onto ``path``.

    The temporary name carries the process id, so two jobs writing the same file do not mix their lines;
    the file gets the permissions ``open`` gives any new file. On an exception the temporary file is
    removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open(mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomically(path: str | Path, text: str) -> None:
    with atomic_writer(path) as handle:
        handle.write(text)


def write_lines_atomically(path: str | Path, lines: Iterable[str]) -> None:
    with atomic_writer(path) as handle:
        handle.writelines(lines)

"""The append-only journal of finished requests: the whole state of a generation run, safe against kill -9.

Line 1 is a header with the setup's fingerprint (model and prompts), so that a re-run with another
model or prompt cannot mix its passages into the same output. Every further line is one finished
request, written with a single ``os.write`` on an ``O_APPEND`` descriptor as soon as its answer is
accepted: once written, a record survives the process being killed (the kernel holds it). A kill in
the middle of a write can only leave a torn last line (no trailing newline); opening the journal cuts
it off, so that request is simply asked again. Records are streamed from disk, never all held in
memory: a journal of millions of passages is fine.
"""

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from sycl.data.beir_files import iter_jsonl
from sycl.data.errors import DataFormatError
from sycl.generation.errors import GenerationError

log = logging.getLogger(__name__)

FORMAT = "sycl-generation-journal/1"
TAIL_CHUNK = 1 << 16


class Journal:
    """Use as ``with Journal(path, fingerprint) as journal``: ``iter_records()`` then ``append(record)``.

    An exclusive lock on the file keeps a second run from writing to the same output at the same time.
    """

    def __init__(self, path: str | Path, fingerprint: dict):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self._fd: int | None = None
        self._created = False
        self._appended = False
        self._new_folders: list[Path] = []

    def __enter__(self) -> "Journal":
        self._new_folders = [p for p in (self.path.parent, *self.path.parent.parents) if not p.exists()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.close()
            raise GenerationError(f"{self.path}: another generate.py run is writing to this output_dir") from None
        try:
            self._cut_torn_tail()
            self._check_header()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close()
        # A run that failed before accepting any answer (bad config, no server) leaves nothing behind: neither
        # the journal nor the output folders it made, unless something else was written into them meanwhile.
        if exc_type is not None and self._created and not self._appended:
            self.path.unlink(missing_ok=True)
            for folder in self._new_folders:
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only an empty one: never what another writer left there

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # also releases the lock
            self._fd = None

    def iter_records(self) -> Iterator[dict]:
        """Every record after the header, oldest first, read from disk."""
        lines = iter_jsonl(self.path)
        next(lines)
        for _, record in lines:
            yield record

    def append(self, record: dict) -> None:
        """Write one record; when this returns, killing the process cannot lose it."""
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        self._appended = True
        while data:  # os.write may write less than asked; the rest continues the same line
            data = data[os.write(self._fd, data) :]

    def _cut_torn_tail(self) -> None:
        size = end = os.fstat(self._fd).st_size
        keep = 0
        while end > 0:
            start = max(0, end - TAIL_CHUNK)
            newline = os.pread(self._fd, end - start, start).rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            end = start
        if keep < size:
            log.warning("%s: dropping a torn last line (%d bytes) left by an interrupted run", self.path, size - keep)
            os.ftruncate(self._fd, keep)

    def _check_header(self) -> None:
        first = next(iter_jsonl(self.path), None)
        if first is None:
            self.append({"format": FORMAT, "fingerprint": self.fingerprint})
            self._created, self._appended = True, False
            return
        line, header = first
        if header.get("format") != FORMAT:
            raise DataFormatError(self.path, f"not a generation journal (expected {FORMAT!r})", line, "format")
        saved = header.get("fingerprint") or {}
        if saved != self.fingerprint:
            differ = sorted(k for k in {*saved, *self.fingerprint} if saved.get(k) != self.fingerprint.get(k))
            raise GenerationError(
                f"{self.path} was written with a different {' and '.join(differ)}: mixing the two would give "
                "passages from different setups the same labels. Use another output_dir, or delete the journal "
                "to start over."
            )

"""Reading the records of an offline W&B run file, to check what a job told W&B (group, name, type, exit code)."""

import struct
import time
from collections.abc import Iterator
from pathlib import Path

from wandb.proto import wandb_internal_pb2

HEADER_BYTES = 7  # ":W&B", then 2 bytes of magic and 1 byte of version
BLOCK_BYTES = 32768  # records are framed like a LevelDB log: 7-byte chunk headers inside 32 KiB blocks


def records(path: Path) -> Iterator:
    """Every ``Record`` of a ``run-*.wandb`` file, in the order the run wrote them."""
    data = path.read_bytes()
    position, pending = HEADER_BYTES, b""
    while position + 7 <= len(data):
        if BLOCK_BYTES - position % BLOCK_BYTES < 7:  # block trailer too short for a header: skip it
            position += BLOCK_BYTES - position % BLOCK_BYTES
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        if position + 7 + length > len(data):  # a record W&B is still writing
            break
        chunk = data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # full record, or last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending + chunk)
            pending = b""
            yield record
        elif kind in (2, 3):  # first or middle chunk
            pending += chunk
        else:
            break


def run_record(path: Path):
    """The ``RunRecord`` (run_group, job_type, display_name, tags, ...) of a ``run-*.wandb`` file."""
    for record in records(path):
        if record.WhichOneof("record_type") == "run":
            return record.run
    raise ValueError(f"no run record in {path}")


def exit_code(path: Path, wait_s: float = 30.0) -> int:
    """The exit code the run was closed with (``wandb.finish(exit_code=...)``): 0 is shown as finished.

    W&B's writer process may still be flushing the exit record when ``wandb.finish`` returns, so the
    file is read again for up to ``wait_s`` seconds.
    """
    deadline = time.monotonic() + wait_s
    while True:
        codes = [record.exit.exit_code for record in records(path) if record.WhichOneof("record_type") == "exit"]
        if codes:
            return codes[-1]
        if time.monotonic() > deadline:
            raise ValueError(f"no exit record in {path} after {wait_s} s: the run was never closed")
        time.sleep(0.2)

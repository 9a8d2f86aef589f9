"""Reading the run record of an offline W&B run file, to check what a job told W&B (group, name, type)."""

import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2

HEADER_BYTES = 7  # ":W&B", then 2 bytes of magic and 1 byte of version
BLOCK_BYTES = 32768  # records are framed like a LevelDB log: 7-byte chunk headers inside 32 KiB blocks


def run_record(path: Path):
    """The ``RunRecord`` (run_group, job_type, display_name, tags, ...) of a ``run-*.wandb`` file."""
    data = path.read_bytes()
    position, pending = HEADER_BYTES, b""
    while position + 7 <= len(data):
        if BLOCK_BYTES - position % BLOCK_BYTES < 7:  # block trailer too short for a header: skip it
            position += BLOCK_BYTES - position % BLOCK_BYTES
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        chunk = data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # full record, or last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending + chunk)
            pending = b""
            if record.WhichOneof("record_type") == "run":
                return record.run
        elif kind in (2, 3):  # first or middle chunk
            pending += chunk
        else:
            break
    raise ValueError(f"no run record in {path}")

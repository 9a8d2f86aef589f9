"""Helpers shared by every entry point that logs."""

import csv
import sys
from pathlib import Path


def finish_wandb(loggers: list) -> None:
    """Close the W&B run so that each job of a multirun, and each eval, gets a run of its own.

    Meant for a ``finally:`` block: while an exception propagates through it, the run is closed with
    exit code 1, so W&B shows the job as failed rather than finished (a multirun goes on after a failed
    job, which then only has its ``failed.json`` and this W&B state to tell). Called from inside an
    ``except`` block, the exception being handled there counts as propagating too.
    """
    if any(type(logger).__name__ == "WandbLogger" for logger in loggers):
        import wandb

        wandb.finish(exit_code=0 if sys.exc_info()[0] is None else 1)


def adopt_csv_columns(logger) -> None:
    """Let a ``CSVLogger`` append to a ``metrics.csv`` that another process of the same run wrote.

    Under ``ddp_spawn`` the training metrics are written by the spawned rank 0, while the launching
    process, whose own writer has never seen those columns, logs the test metrics afterwards. Lightning's
    writer then rewrites the file with only its own columns and fails on the existing rows
    ("dict contains fields not in fieldnames"). Taking the file's header into the writer's columns first
    keeps every row.
    """
    if type(logger).__name__ != "CSVLogger":
        return
    writer = logger.experiment
    path = Path(writer.metrics_file_path)
    if not path.is_file():
        return
    with path.open(newline="") as handle:
        header = next(csv.reader(handle), [])
    writer.metrics_keys = sorted(set(writer.metrics_keys) | set(header))

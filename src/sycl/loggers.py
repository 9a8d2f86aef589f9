"""Helpers shared by every entry point that logs."""

import sys


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

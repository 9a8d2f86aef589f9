"""Helpers shared by every entry point that logs."""

import csv
import logging
import sys
from pathlib import Path

import lightning.pytorch.loggers

# Where Lightning's rank_zero_info writes (lightning_utilities logs to whichever of the two was imported last).
LIGHTNING_INFO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


class DropLightningTips(logging.Filter):
    """Drops Lightning's advertisements ("💡 Tip: ... try installing litlogger / litmodels"), printed at every fit."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


DROP_LIGHTNING_TIPS = DropLightningTips()


def set_library_verbosity(verbose: bool) -> None:
    """Lightning's tips and the progress bars of transformers (loading and writing weights) only when ``verbose``.

    The rest of what ``verbose`` brings back is switched in the configs: Lightning's model summary
    (``trainer.enable_model_summary``) and W&B's console output (``logger.wandb.settings.silent``).
    """
    from transformers.utils import logging as transformers_logging

    lightning_loggers = [logging.getLogger(name) for name in LIGHTNING_INFO_LOGGERS]
    if verbose:
        for logger in lightning_loggers:
            logger.removeFilter(DROP_LIGHTNING_TIPS)
        transformers_logging.enable_progress_bar()
    else:
        for logger in lightning_loggers:
            logger.addFilter(DROP_LIGHTNING_TIPS)
        transformers_logging.disable_progress_bar()


class WandbLogger(lightning.pytorch.loggers.WandbLogger):
    """Lightning's ``WandbLogger``, less the ``anonymous=None`` it always hands to ``wandb.init``.

    wandb (0.2x and later) answers any ``anonymous`` argument, None included, with "The anonymous setting has no
    effect and will be removed" on every run, even a silent one; leaving it out changes nothing else. An
    explicit ``anonymous=True`` is still passed through.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)


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

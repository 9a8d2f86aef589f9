"""Callbacks: export of the trained encoder as a standalone model folder."""

import logging
from pathlib import Path

from lightning import Callback, LightningModule, Trainer

log = logging.getLogger(__name__)


class ExportEncoder(Callback):
    """At the end of training, write the encoder to ``dirpath`` (HF + sentence-transformers + settings)."""

    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.is_global_zero:
            pl_module.encoder.save_pretrained(self.dirpath)
            log.info("exported the trained encoder to %s", self.dirpath)

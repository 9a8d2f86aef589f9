"""Callbacks: export of the trained encoder as a standalone model folder."""

import logging
from pathlib import Path

import torch
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

log = logging.getLogger(__name__)


class ExportEncoder(Callback):
    """At the end of training, write the encoder to ``dirpath`` (HF + sentence-transformers + settings).

    With ``use_best`` and a checkpoint callback that monitors a metric, the best checkpoint's weights
    are exported rather than the last step's.
    """

    def __init__(self, dirpath: str, use_best: bool = True):
        self.dirpath = Path(dirpath)
        self.use_best = use_best

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        best = self.best_checkpoint(trainer) if self.use_best else None
        if best is not None:
            state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
            pl_module.load_state_dict(state)
            log.info("exporting the best checkpoint %s", best)
        if trainer.is_global_zero:
            pl_module.encoder.save_pretrained(self.dirpath)
            log.info("exported the trained encoder to %s", self.dirpath)

    @staticmethod
    def best_checkpoint(trainer: Trainer) -> str | None:
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.monitor and callback.best_model_path:
                return callback.best_model_path
        return None

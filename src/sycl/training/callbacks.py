"""Callbacks: export of the trained encoder as a standalone model folder."""

import logging
from pathlib import Path

from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from sycl.models.checkpoint import encoder_from_checkpoint

log = logging.getLogger(__name__)


class ExportEncoder(Callback):
    """At the end of training, write the encoder to ``dirpath`` (HF + sentence-transformers + settings).

    With ``use_best`` and a checkpoint callback that monitors a metric, the best checkpoint's weights
    are exported rather than the last step's. They are loaded into a fresh encoder, never into the
    trained module: checkpoint callbacks run after this one and may still write ``last.ckpt`` from it.
    A LoRA encoder is exported merged (``merge_lora``, a plain model folder) or as its adapter alone, which
    points to its base model (see ``DualEncoder.save_pretrained``).
    """

    def __init__(self, dirpath: str, use_best: bool = True, merge_lora: bool = True):
        self.dirpath = Path(dirpath)
        self.use_best = use_best
        self.merge_lora = merge_lora

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        best = self.best_checkpoint(trainer) if self.use_best else None
        if best is None:
            encoder = pl_module.encoder
        else:
            encoder = encoder_from_checkpoint(best)
            log.info("exporting the best checkpoint %s", best)
        encoder.save_pretrained(self.dirpath, merge_lora=self.merge_lora)
        log.info("exported the trained encoder to %s", self.dirpath)

    @staticmethod
    def best_checkpoint(trainer: Trainer) -> str | None:
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.monitor and callback.best_model_path:
                return callback.best_model_path
        return None

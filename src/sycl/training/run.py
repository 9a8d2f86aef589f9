"""One training run from a composed config: the body of train.py, importable by tests."""

import logging
from pathlib import Path

import lightning
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    """Build datamodule, module, callbacks, loggers and trainer from ``cfg``; fit; return the final metrics."""
    lightning.seed_everything(cfg.seed, workers=True)
    encoder = instantiate(cfg.model)
    module = instantiate(cfg.module, encoder=encoder, loss=instantiate(cfg.loss))
    # Through a partial: Hydra would turn a dataclass passed to instantiate() into a config node.
    datamodule = instantiate(cfg.data, _partial_=True)(tokenization=encoder.tokenization)
    datamodule.setup("fit")  # reads and checks every source now, so bad input fails before anything heavy starts
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    finally:
        finish_wandb(loggers)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    export_dir = Path(cfg.paths.output_dir) / "model"
    if trainer.is_global_zero and export_dir.is_dir():
        log.info("trained encoder exported to %s", export_dir)
        print(f"Exported model: {export_dir}")
    return metrics


def finish_wandb(loggers: list) -> None:
    """Close the W&B run so that each job of a multirun gets a run of its own."""
    if any(type(logger).__name__ == "WandbLogger" for logger in loggers):
        import wandb

        wandb.finish()

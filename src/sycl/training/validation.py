"""In-training retrieval validation: nDCG@10 of the current encoder on a small dev split."""

import logging

from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_warn

from sycl import hub
from sycl.evaluation.datasets import DatasetSpec, RetrievalSplit, hub_uris, load_split
from sycl.evaluation.evaluator import EvaluationSettings, RetrievalEvaluator

log = logging.getLogger(__name__)


class RetrievalValidation(Callback):
    """Logs ``val/ndcg@10`` once per epoch, for the best-checkpoint and early-stopping callbacks to monitor.

    Runs at the end of the validation epoch when there is a validation loop (so the metric exists
    before checkpoints are chosen), else at the end of the training epoch.

    Before the first training step it also scores the untrained (base) encoder, logged to the loggers as
    ``val/ndcg@10`` at step 0 so every curve starts from the base model, and kept in ``base_score`` (saved
    in checkpoints, so a resumed run still knows it). At the end of fit, if no validation beat the base
    model, it warns: the exported checkpoint is then no better than the model training started from.

    A run resumed from a checkpoint written after an epoch's last batch, before that epoch's validation, validates
    that epoch once, as an uninterrupted run does (``RetrieverModule.on_load_checkpoint``).
    """

    def __init__(
        self,
        dataset: str,
        split: str = "dev",
        batch_size: int = 64,
        top_k: int = 100,
        beir_dir: str = "data/beir",
        cache_dir: str | None = None,
    ):
        self.spec = DatasetSpec(path=dataset, split=split)
        self.beir_dir = beir_dir
        # The cache keys on the weights, so only the base model's embeddings are ever reused (run after run).
        settings = EvaluationSettings(batch_size=batch_size, top_k=top_k, progress=False, cache_dir=cache_dir)
        self.evaluator = RetrievalEvaluator(settings)
        self.split: RetrievalSplit | None = None
        self.base_score: float | None = None
        self.best_score: float | None = None
        self._validated_epoch = -1

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.split is None:
            # An hf:// dev set is fetched by one process per node while the others wait, then read from the cache
            # by all; nothing else is downloaded here (a missing BEIR folder fails, naming what to fetch).
            if trainer.local_rank == 0:
                for uri in hub_uris(self.spec).values():
                    hub.fetch(uri)
            trainer.strategy.barrier("retrieval_validation_hub_files")
            self.split = load_split(self.spec, self.beir_dir, download=False)  # bad dev data fails before training

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.global_step == 0 and self.base_score is None:
            self.base_score = self._ndcg_at_10(pl_module)
            log.info("val/ndcg@10 of the base model, before training: %.4f", self.base_score)
            # Straight to the loggers: through pl_module.log it would become the monitored metric of the first
            # checkpoint decision, which must compare trained weights.
            for logger in trainer.loggers:
                logger.log_metrics({"val/ndcg@10": self.base_score}, step=0)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validate(trainer, pl_module)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._validated_epoch != trainer.current_epoch:
            self._validate(trainer, pl_module)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.base_score is not None and self.best_score is not None and self.best_score <= self.base_score:
            rank_zero_warn(
                f"training never beat the base model on {self.spec.label} ({self.spec.split}): best val/ndcg@10 "
                f"{self.best_score:.4f} <= {self.base_score:.4f} before training. The exported model is no better "
                "than the one training started from; see README 'Why demo training can hurt a real collection'."
            )

    def state_dict(self) -> dict:
        return {"base_score": self.base_score, "best_score": self.best_score}

    def load_state_dict(self, state_dict: dict) -> None:
        self.base_score = state_dict.get("base_score")
        self.best_score = state_dict.get("best_score")

    def _validate(self, trainer: Trainer, pl_module: LightningModule) -> None:
        score = self._ndcg_at_10(pl_module)
        pl_module.log("val/ndcg@10", score, sync_dist=True)
        self.best_score = score if self.best_score is None else max(self.best_score, score)
        self._validated_epoch = trainer.current_epoch

    def _ndcg_at_10(self, pl_module: LightningModule) -> float:
        self.evaluator.settings.device = str(pl_module.device)
        metrics, _ = self.evaluator.evaluate(pl_module.encoder, self.split)  # restores the encoder's train mode
        return metrics["NDCG@10"]

"""In-training retrieval validation: nDCG@10 of the current encoder on a small dev split."""

import logging

from lightning import Callback, LightningModule, Trainer

from sycl.evaluation.datasets import DatasetSpec, RetrievalSplit, load_split
from sycl.evaluation.evaluator import EvaluationSettings, RetrievalEvaluator

log = logging.getLogger(__name__)


class RetrievalValidation(Callback):
    """Logs ``val/ndcg@10`` once per epoch, for the best-checkpoint callback to monitor.

    Runs at the end of the validation epoch when there is a validation loop (so the metric exists
    before checkpoints are chosen), else at the end of the training epoch.
    """

    def __init__(
        self, dataset: str, split: str = "dev", batch_size: int = 64, top_k: int = 100, beir_dir: str = "data/beir"
    ):
        self.spec = DatasetSpec(path=dataset, split=split)
        self.beir_dir = beir_dir
        self.evaluator = RetrievalEvaluator(EvaluationSettings(batch_size=batch_size, top_k=top_k, progress=False))
        self.split: RetrievalSplit | None = None
        self._validated_epoch = -1

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.split is None:
            self.split = load_split(self.spec, self.beir_dir, download=False)  # bad dev data fails before training

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validate(trainer, pl_module)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._validated_epoch != trainer.current_epoch:
            self._validate(trainer, pl_module)

    def _validate(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.evaluator.settings.device = str(pl_module.device)
        metrics, _ = self.evaluator.evaluate(pl_module.encoder, self.split)
        pl_module.log("val/ndcg@10", metrics["NDCG@10"], sync_dist=True)
        self._validated_epoch = trainer.current_epoch

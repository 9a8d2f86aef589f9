"""One training run from a composed config: the body of train.py, importable by tests."""

import logging
import os
from pathlib import Path

import lightning
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from sycl.evaluation.benchmark import dataset_specs, evaluate_datasets, load_qrels
from sycl.evaluation.evaluator import EvaluationSettings
from sycl.evaluation.metrics import per_query_metric
from sycl.evaluation.reports import write_comparison
from sycl.evaluation.run import evaluation_only, log_to_loggers
from sycl.evaluation.significance import paired_test
from sycl.loggers import finish_wandb, set_library_verbosity
from sycl.models.dual_encoder import DualEncoder

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    """Build datamodule, module, callbacks, loggers and trainer from ``cfg``; fit; return the final metrics.

    After fit, the exported model and the base model are evaluated on ``cfg.benchmark`` (unless it is null, or
    nothing was exported) and their comparison table is printed last, after W&B has closed its run.
    """
    set_library_verbosity(cfg.get("verbose", False))
    lightning.seed_everything(cfg.seed, workers=True)
    encoder = instantiate(cfg.model)
    module = instantiate(cfg.module, encoder=encoder, loss=instantiate(cfg.loss))
    # Through a partial: Hydra would turn a dataclass passed to instantiate() into a config node.
    datamodule = instantiate(cfg.data, _partial_=True)(tokenization=encoder.tokenization)
    if local_rank() == 0:
        # Fetch the hub files and read and check every source now, so that bad input fails before anything heavy
        # starts. The other processes of a DDP launch read them in fit, after this one has fetched them.
        datamodule.prepare_data()
        datamodule.setup("fit")
    callbacks = instantiate_entries(cfg.get("callbacks"))
    loggers = instantiate_entries(cfg.get("logger"))
    trainer = build_trainer(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    hyperparameters = OmegaConf.to_container(cfg, resolve=True)
    if datamodule.hub_commits():  # the upstream commit of each hf:// file: what a pinned rerun needs
        hyperparameters["hub_files"] = datamodule.hub_commits()
    for logger in loggers:
        logger.log_hyperparams(hyperparameters)
    comparison = None
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        export_dir = Path(cfg.paths.output_dir) / "model"
        if trainer.is_global_zero and export_dir.is_dir():
            print(f"Exported model: {export_dir}")
            if cfg.get("benchmark"):
                test_metrics, comparison = evaluate_trained_and_base(cfg, export_dir, loggers)
                metrics.update(test_metrics)
    finally:
        finish_wandb(loggers)
    if comparison is not None:
        print("\nTest benchmark, base model vs trained:\n" + comparison)
    return metrics


def build_trainer(trainer_cfg: DictConfig, **objects) -> lightning.Trainer:
    """``lightning.Trainer`` from ``cfg.trainer``, leaving out every key set to null.

    conf/trainer/cpu.yaml lists Lightning's common arguments as null ("Lightning's default") so that both
    ``trainer.max_steps=100`` and the older ``+trainer.max_steps=100`` override them (Hydra lets ``+`` add a key
    whose value is null). Passing them through as None would not always mean the default (max_steps=None is no
    limit Lightning accepts), so they are not passed at all.
    """
    options = {
        key: value for key, value in OmegaConf.to_container(trainer_cfg, resolve=True).items() if value is not None
    }
    return instantiate(options, **objects)


def local_rank() -> int:
    """This process's rank on its node before the Trainer exists: what torchrun, SLURM or Lightning's DDP
    launcher put in the environment (0 for a single process)."""
    return int(os.environ.get("LOCAL_RANK", os.environ.get("SLURM_LOCALID", 0)))


def instantiate_entries(group: DictConfig | None) -> list:
    """One object per entry of a callbacks or logger config; an entry set to null is switched off.

    conf/debug/ switches callbacks off that way, and so can a command line: ``callbacks.export_encoder=null``.
    """
    return [instantiate(entry) for entry in (group or {}).values() if entry is not None]


def evaluate_trained_and_base(cfg: DictConfig, export_dir: Path, loggers: list) -> tuple[dict[str, float], str]:
    """Evaluate the exported model and the untrained base model on the test benchmark.

    Each model's results files (``results*`` and ``results_base*``, see ``evaluate_datasets``) are written as
    each dataset finishes, so a failure on a later dataset keeps the earlier ones. Then comparison.md and
    comparison.json (``write_comparison``): per dataset, a paired test over queries of the trained model's
    nDCG@10 against the base model's, from both runs and the split's qrels (read again: not the corpus).
    Returns the trained model's ``test/<dataset>/<metric>`` values and the comparison table (markdown).
    """
    specs = dataset_specs(cfg.benchmark.datasets)
    settings = EvaluationSettings(**OmegaConf.to_container(cfg.evaluation, resolve=True))
    output_dir = Path(cfg.paths.output_dir)
    trained, trained_runs = evaluate_datasets(
        # In the dtype and attention it was trained with: an adapter export's base model is loaded anew.
        DualEncoder.from_pretrained(
            str(export_dir),
            dtype=cfg.model.get("dtype"),
            attn_implementation=cfg.model.get("attn_implementation", "sdpa"),
        ),
        specs,
        settings,
        cfg.paths.beir_dir,
        output_dir=output_dir,
        model_label=f"trained model {export_dir}",
    )
    base, base_runs = evaluate_datasets(
        instantiate(cfg.model, **evaluation_only()),
        specs,
        settings,
        cfg.paths.beir_dir,
        output_dir=output_dir,
        prefix="results_base",
        tag="base",
        model_label=f"base model {cfg.model.name_or_path}",
    )
    tests = {}
    for spec in specs:
        qrels = load_qrels(spec, cfg.paths.beir_dir)
        tests[spec.label] = paired_test(
            per_query_metric(qrels, base_runs[spec.label]), per_query_metric(qrels, trained_runs[spec.label])
        )
    table = write_comparison(output_dir, base, trained, tests)
    log_to_loggers(loggers, trained, prefix="test")
    log_to_loggers(loggers, base, prefix="test_base")
    return {f"test/{d}/{m}": v for d, row in trained.items() for m, v in row.items()}, table

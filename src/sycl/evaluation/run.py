"""The body of eval.py: load a ranker (a model folder, hub id or .ckpt; or BM25), evaluate on a benchmark, write
results."""

import logging
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from sycl.evaluation.benchmark import benchmark_average, dataset_specs, evaluate_datasets
from sycl.evaluation.evaluator import EvaluationSettings
from sycl.evaluation.reports import Results, results_table
from sycl.loggers import adopt_csv_columns, finish_wandb, set_library_verbosity
from sycl.models.checkpoint import encoder_from_checkpoint
from sycl.models.dual_encoder import DualEncoder

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> Results:
    """Evaluate ``cfg.ranker`` (the encoder of ``cfg.model`` or ``cfg.ckpt_path``, or BM25) on ``cfg.datasets``;
    write results to the run dir."""
    set_library_verbosity(cfg.get("verbose", False))
    specs = dataset_specs(cfg.datasets, cfg.split)
    average = benchmark_average(cfg.benchmark.get("average"), specs)
    ranker = instantiate(cfg.ranker)
    lexical = not isinstance(ranker, DualEncoder)
    settings = EvaluationSettings(**OmegaConf.to_container(cfg.evaluation, resolve=True))
    output_dir = Path(cfg.paths.output_dir)
    # Written as each dataset finishes: a failure on a later dataset keeps the earlier ones' results.
    results, _ = evaluate_datasets(
        ranker,
        specs,
        settings,
        cfg.paths.beir_dir,
        cfg.get("download", True),
        output_dir=output_dir,
        tag=ranker.name if lexical else "sycl",
        # A checkpoint's encoder carries the name of the base model it was trained from.
        model_label=f"checkpoint {cfg.ckpt_path}" if cfg.get("ckpt_path") and not lexical else None,
        average=average,
    )
    if lexical:
        print(f"Ranked by {ranker.description}")
    print(results_table(results, average=average))
    print(f"Results: {output_dir / 'results.json'}")
    if cfg.get("logger"):
        loggers = [instantiate(c) for c in cfg.logger.values()]
        try:
            log_to_loggers(loggers, results, cfg)
        finally:
            finish_wandb(loggers)
    return results


def load_encoder(model: DictConfig, ckpt_path: str | None = None) -> DualEncoder:
    """The encoder that ``ranker=dense`` evaluates: a training checkpoint's if ``ckpt_path``, else ``model``'s."""
    return encoder_from_checkpoint(ckpt_path) if ckpt_path else instantiate(model)


def log_to_loggers(loggers: list, results: Results, cfg: DictConfig | None = None, prefix: str = "test") -> None:
    """Log ``{prefix}/<dataset>/<metric>`` values, and the results table to W&B."""
    flat = {f"{prefix}/{dataset}/{metric}": value for dataset, row in results.items() for metric, value in row.items()}
    for logger in loggers:
        if cfg is not None:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        adopt_csv_columns(logger)
        logger.log_metrics(flat)
        if hasattr(logger, "log_table"):
            metrics = list(next(iter(results.values())))
            logger.log_table(
                key=f"{prefix}/results",
                columns=["dataset", *metrics],
                data=[[dataset, *row.values()] for dataset, row in results.items()],
            )
        logger.save()

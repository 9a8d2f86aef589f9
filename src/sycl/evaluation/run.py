"""The body of eval.py: load a ranker (a model folder, hub id or .ckpt; or BM25), evaluate on a benchmark, write
results."""

import logging
from dataclasses import fields
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from sycl.evaluation.benchmark import benchmark_average, dataset_specs, evaluate_datasets
from sycl.evaluation.evaluator import EvaluationSettings
from sycl.evaluation.reports import Results, results_table
from sycl.evaluation.sharding import launch
from sycl.loggers import adopt_csv_columns, finish_wandb, set_library_verbosity
from sycl.models.checkpoint import encoder_from_checkpoint
from sycl.models.dual_encoder import SETTINGS_FILE, DualEncoder, EncoderSettings, read_saved_settings

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
    shards = launch(settings.devices, settings.num_nodes, settings.accelerator) if not lexical else None
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
        shards=shards,
    )
    if shards and not shards.is_main:
        return results  # the main process prints and logs
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


def load_encoder(model: DictConfig, ckpt_path: str | None = None, settings_from_folder: bool = True) -> DualEncoder:
    """The encoder that ``ranker=dense`` evaluates: a training checkpoint's if ``ckpt_path``, else ``model``'s.

    ``model`` is a config of the ``model`` group (conf/model/), as train.py builds its base model from, so the
    same group gives the same encoder, settings and embedding-cache key in both. Its settings describe the base
    model it names; a folder exported by train.py carries its own (``sycl_encoder.json``), and with
    ``settings_from_folder`` those win: each setting left as None is read from the folder. A group setting that
    differs from the folder's is logged, not applied. Only training needs the group's ``lora`` (fresh adapters,
    which change no embedding) and ``gradient_checkpointing``: evaluation loads without them (``evaluation_only``),
    and a LoRA adapter folder (``adapter_config.json``, from train.py or elsewhere) brings its own adapters.
    """
    if ckpt_path:
        return encoder_from_checkpoint(ckpt_path)
    if not (settings_from_folder and (Path(model.name_or_path) / SETTINGS_FILE).is_file()):
        encoder = instantiate(model, **evaluation_only())
        warn_if_saved_settings_disagree(model.name_or_path, encoder)
        return encoder
    names = [field.name for field in fields(EncoderSettings)]
    encoder = instantiate(model, **dict.fromkeys(names, None), **evaluation_only())
    differing = [n for n in names if n in model and model[n] != getattr(encoder.settings, n)]
    if differing:
        log.warning(
            "%s is evaluated with the settings saved in its %s (%s), not model.%s; ranker.settings_from_folder=false "
            "applies the model's",
            model.name_or_path,
            SETTINGS_FILE,
            ", ".join(f"{n}={getattr(encoder.settings, n)!r}" for n in differing),
            ", model.".join(f"{n}={model[n]!r}" for n in differing),
        )
    return encoder


def evaluation_only() -> dict:
    """Options that load a ``model`` group's encoder for evaluation: no fresh LoRA adapters (their B starts at zero,
    so they change no embedding, only cost memory, time and another cache entry) and no gradient checkpointing.
    train.py evaluates its base model the same way, so both give one embedding-cache key."""
    return {"lora": None, "gradient_checkpointing": False}


def warn_if_saved_settings_disagree(name_or_path: str, encoder: DualEncoder) -> None:
    """Warn when a sentence-transformers folder was trained to be read otherwise than the group reads it.

    Its pooling and normalisation define what its embeddings mean, so a mismatch gives wrong figures rather than
    different ones; max lengths are a speed-for-quality choice (MiniLM's group cuts passages at 128 of its 256).
    """
    saved = read_saved_settings(str(name_or_path))
    differing = [
        name for name in ("pooling", "normalize") if name in saved and saved[name] != getattr(encoder.settings, name)
    ]
    if differing:
        log.warning(
            "%s was saved to be read with %s, but is evaluated with the model group's %s: set %s to match, or "
            "choose its model group",
            name_or_path,
            ", ".join(f"{name}={saved[name]!r}" for name in differing),
            ", ".join(f"{name}={getattr(encoder.settings, name)!r}" for name in differing),
            " ".join(f"model.{name}={saved[name]}" for name in differing),
        )


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

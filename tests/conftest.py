"""Shared fixtures: offline hub, a tiny local BERT, the bundled MiniLM, and composed train configs."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported: no test may touch the network
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import open_dict  # noqa: E402

from sycl.config import bundled_minilm_path, repo_root  # noqa: E402
from tests.decoder_fixtures import tiny_decoder_path  # noqa: E402, F401  (a fixture: a tiny random Qwen2)
from tests.hub_cache import offline_hub  # noqa: E402, F401  (a fixture: an offline HF cache built by hand)

CONF_DIR = str(Path(repo_root()) / "conf")


@pytest.fixture(scope="session")
def minilm_path() -> str:
    return bundled_minilm_path()


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory, minilm_path) -> str:
    """A 2-layer, 32-wide BERT with random weights and MiniLM's tokenizer, saved locally.

    Dropout is off so that runs are exactly reproducible (the resume test compares weights).
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    path = tmp_path_factory.mktemp("tiny_bert")
    BertModel(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(path)
    return str(path)


def tiny_model_overrides(tiny_model_path: str) -> list[str]:
    """The tiny model of ``tiny_model_path`` with short texts and batches of 4: a train config that runs in seconds."""
    return [
        f"model.name_or_path={tiny_model_path}",
        "model.query_max_length=16",
        "model.passage_max_length=32",
        "data.batch_size=4",
    ]


def compose_train_config(output_dir: Path, overrides: list[str]):
    """Compose conf/train.yaml as train.py would, with outputs in ``output_dir``."""
    return compose_config("train", output_dir, overrides)


def compose_config(name: str, output_dir: Path, overrides: list[str], keep_hydra: bool = False):
    """Compose conf/<name>.yaml as its entry point would, with outputs in ``output_dir``.

    ``keep_hydra`` keeps the ``hydra`` node (sweeper settings) that a job's own config does not have.
    """
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONF_DIR):
        cfg = compose(name, overrides=overrides, return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(output_dir)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.output_dir = str(output_dir)
            cfg.paths.cache_dir = str(output_dir / "cache")  # never read or fill the checkout's cache
            if not keep_hydra:
                del cfg.hydra
    return cfg

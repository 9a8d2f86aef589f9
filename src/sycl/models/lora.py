"""LoRA adapters on a transformer tower, through the peft library: added for training, saved alone or merged into
the base weights, loaded back onto their base model.

Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models" (ICLR 2022): each targeted linear layer W gains a
trainable low-rank update (lora_alpha / r) * B A, B starting at zero, while W stays frozen. peft is imported
inside the functions: it takes about 2 s to import, and an encoder without adapters never needs it.
"""

import contextlib
import copy
import json
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path

from torch import nn

ADAPTER_CONFIG = "adapter_config.json"
# Fields of a saved adapter config that say where it came from, not what it computes: left out of its description.
PROVENANCE_FIELDS = ("base_model_name_or_path", "revision", "inference_mode", "peft_version", "auto_mapping")


def add_lora(model: nn.Module, options: Mapping) -> nn.Module:
    """Wrap ``model`` in a ``peft.PeftModel`` with fresh adapters; only they (and ``modules_to_save``) train.

    ``options`` are ``peft.LoraConfig`` fields: ``r``, ``lora_alpha``, ``lora_dropout``, ``target_modules`` (None:
    peft's default for the architecture, e.g. q_proj and v_proj for Qwen2 and Llama), ``modules_to_save`` (whole
    modules trained and saved beside the adapters). Adapter weights are kept in float32 over a bf16 or fp16 base
    (peft's ``autocast_adapter_dtype``), so the optimizer updates them in full precision.
    Raises ValueError for a field LoraConfig does not have.
    """
    from peft import LoraConfig, get_peft_model

    try:
        config = LoraConfig(**options)
    except TypeError as error:
        raise ValueError(
            f"model.lora: {error}. Its keys are peft.LoraConfig fields (r, lora_alpha, lora_dropout, target_modules, "
            "modules_to_save, ...)"
        ) from None
    with quiet_checkpointing_query():
        return get_peft_model(model, config)


def has_lora(model: nn.Module) -> bool:
    """True for a ``peft.PeftModel`` (without importing peft when nothing has)."""
    peft = sys.modules.get("peft")
    return peft is not None and isinstance(model, peft.PeftModel)


def is_adapter_folder(name_or_path: str | Path) -> bool:
    """True for a local folder holding a peft adapter (``adapter_config.json``) rather than full weights."""
    return (Path(name_or_path) / ADAPTER_CONFIG).is_file()


def adapter_base(folder: str | Path) -> str:
    """The base model an adapter folder points to: its ``adapter_config.json``'s ``base_model_name_or_path``.

    Raises ValueError when the pointer is missing; edit that field when the base model has moved.
    """
    base = json.loads((Path(folder) / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
    if not base:
        raise ValueError(
            f"{Path(folder) / ADAPTER_CONFIG} names no base model (base_model_name_or_path): set it to the hub id or "
            "folder of the model the adapter was trained on"
        )
    return base


def load_adapter(model: nn.Module, folder: str | Path) -> nn.Module:
    """``model`` (the base) with the adapter saved in ``folder``; the adapter stays trainable, the base frozen."""
    from peft import PeftModel

    with quiet_checkpointing_query():
        return PeftModel.from_pretrained(model, str(folder), is_trainable=True)


@contextlib.contextmanager
def quiet_checkpointing_query():
    """Silence the FutureWarning transformers 5 gives when peft reads ``is_gradient_checkpointing`` (renamed
    ``is_activation_checkpointing``): a matter between the two libraries, nothing a user could change."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def merged_copy(model: nn.Module) -> nn.Module:
    """A plain transformers model whose weights are W + (lora_alpha / r) B A; ``model`` itself is left as it is.

    The copy costs one more model in memory, but merging in place and unmerging afterwards would not give the
    original weights back exactly in bf16. In bf16 the merged weights are rounded once, so their embeddings can
    differ from the unmerged model's in the last bits.
    """
    return copy.deepcopy(model).merge_and_unload()


def adapter_description(model: nn.Module) -> dict | None:
    """What the adapters compute besides their weights (rank, scaling, targets), JSON-ready; None without LoRA.

    The weights are in the state dict; ``lora_alpha`` / ``r`` scale them and are not, so an embedding cache key
    needs both.
    """
    if not has_lora(model):
        return None
    config = model.peft_config["default"].to_dict()
    return {
        key: sorted(value) if isinstance(value, set) else value
        for key, value in sorted(config.items())
        if key not in PROVENANCE_FIELDS
    }

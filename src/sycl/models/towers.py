"""Loading one transformer tower: weight dtype, attention backend, gradient checkpointing and LoRA adapters."""

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModel

from sycl.models.lora import adapter_base, add_lora, has_lora, is_adapter_folder, load_adapter

DTYPES = ("float32", "bfloat16", "float16", "auto")


@dataclass
class TowerOptions:
    """How each tower is loaded and trained. Unlike ``EncoderSettings`` none of it is needed to reproduce the
    embeddings of an exported folder: weights are saved in their dtype, merged adapters are plain weights, and an
    adapter folder carries its own LoRA config. Checkpoints keep it, to rebuild the module they were written from.

    dtype: the weights' dtype, ``bfloat16``, ``float16``, ``float32`` or ``auto``; None leaves it to transformers
        (``auto``: the dtype in the model's config.json, float32 when it names none).
    attn_implementation: ``sdpa`` (PyTorch's fused attention, the default), ``eager``, or ``flash_attention_2``
        (needs the flash-attn package, a CUDA GPU and bf16 or fp16 weights).
    gradient_checkpointing: keep only each layer's input in the forward and recompute the layer in the backward:
        activation memory of one layer instead of all, for about one more forward of compute; gradients are those
        without it.
    lora: ``peft.LoraConfig`` fields (``r``, ``lora_alpha``, ``lora_dropout``, ``target_modules``,
        ``modules_to_save``) to train adapters instead of all weights; None trains every weight.
    """

    dtype: str | None = None
    attn_implementation: str | None = "sdpa"
    gradient_checkpointing: bool = False
    lora: dict | None = None

    def __post_init__(self):
        if self.dtype is not None and self.dtype not in DTYPES:
            raise ValueError(f"model.dtype={self.dtype!r} is not one of {DTYPES} (or null: the model's own)")
        # Hydra hands in DictConfig / ListConfig: plain containers go into checkpoints and peft's config.
        self.lora = plain(self.lora) if self.lora else None


def plain(value):
    """``value`` with every mapping turned into a dict and every non-string sequence into a list."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [plain(item) for item in value]
    return value


def load_tower(name_or_path: str, options: TowerOptions) -> nn.Module:
    """A transformers ``AutoModel`` from a hub id or model folder, with fresh LoRA adapters when ``options.lora``;
    or, from an adapter folder (``adapter_config.json``), its base model with the saved adapter on top.

    Raises ValueError for ``options.lora`` with an adapter folder (it has its own), OSError when a model (or an
    adapter's base) cannot be loaded, ImportError for flash_attention_2 without flash-attn.
    """
    if is_adapter_folder(name_or_path):
        if options.lora:
            raise ValueError(
                f"{name_or_path} is a LoRA adapter folder, which carries its own LoRA config: leave model.lora unset "
                "(null) to load it, or start fresh adapters from its base model"
            )
        base = adapter_base(name_or_path)
        try:
            base_model = load_base(base, options)
        except OSError as error:
            raise OSError(
                f"{error}\n(It is the base model of the adapter in {name_or_path}: if it has moved, set "
                "base_model_name_or_path in that folder's adapter_config.json to where it is now.)"
            ) from None
        tower = load_adapter(base_model, name_or_path)
    else:
        tower = load_base(name_or_path, options)
        if options.lora:
            tower = add_lora(tower, options.lora)
    if options.gradient_checkpointing:
        # Non-reentrant checkpointing restores the RNG state for the recomputation, so dropout masks (GradCache's
        # replayed ones too) and gradients are those without checkpointing. Only reentrant checkpointing needs the
        # input embeddings hooked to require gradients; transformers and peft hook them anyway, with a local function
        # that cannot be pickled (trainer.strategy=ddp_spawn), so the adapters come first and the hook is removed.
        base = tower.get_base_model() if has_lora(tower) else tower
        base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        base.disable_input_require_grads()
    return tower


def load_base(name_or_path: str, options: TowerOptions) -> nn.Module:
    """The ``AutoModel`` of ``name_or_path`` in ``options.dtype`` with ``options.attn_implementation``; the adapters
    and gradient checkpointing come after (``load_tower``)."""
    if options.attn_implementation == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise ImportError(
            "model.attn_implementation=flash_attention_2 needs the flash-attn package (pip install flash-attn, on a "
            "CUDA machine); model.attn_implementation=sdpa needs nothing"
        )
    kwargs = {"attn_implementation": options.attn_implementation}
    if options.dtype is not None:
        kwargs["dtype"] = options.dtype if options.dtype == "auto" else getattr(torch, options.dtype)
    return load_pretrained(AutoModel, name_or_path, **kwargs)


def load_pretrained(auto_class, name_or_path: str, **kwargs):
    """``auto_class.from_pretrained`` with one readable error when the model is neither local nor reachable."""
    try:
        return auto_class.from_pretrained(name_or_path, **kwargs)
    except (OSError, ValueError) as error:
        if Path(name_or_path).exists():
            raise OSError(
                f"{name_or_path} is not a loadable model folder (it needs config.json, weights and tokenizer files "
                f"as written by save_pretrained). Cause: {first_line(error)}"
            ) from None
        raise OSError(
            f"could not load model {name_or_path!r}: it is not a local folder and the Hugging Face hub could not "
            f"provide it (offline, or no access). Download it on a machine with network access "
            f"(`hf download {name_or_path}`) and point model.name_or_path at the local folder, or set HF_HOME to "
            f"a cache that holds it. Cause: {first_line(error)}"
        ) from None


def first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__

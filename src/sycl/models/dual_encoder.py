"""A dual encoder over any Hugging Face ``AutoModel``: pooling, optional normalisation, dot-product scores."""

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoTokenizer

from sycl.models.lora import adapter_description, has_lora, merged_copy
from sycl.models.pooling import POOLING_MODES, pool
from sycl.models.tokenization import QueryPassageTokenizer, prepare_tokenizer
from sycl.models.towers import TowerOptions, load_pretrained, load_tower

log = logging.getLogger(__name__)

SETTINGS_FILE = "sycl_encoder.json"
PASSAGE_ENCODER_DIR = "passage_encoder"


@dataclass
class EncoderSettings:
    """Everything besides the weights that is needed to reproduce the embeddings; saved with every export."""

    pooling: str = "mean"
    normalize: bool = False
    query_prefix: str = ""
    passage_prefix: str = ""
    query_max_length: int = 256
    passage_max_length: int = 256
    shared: bool = True
    # Close every text with the tokenizer's EOS token, for last-token pooling of decoder embedders (it is installed
    # in the tokenizer, which is saved with the export; see prepare_tokenizer).
    append_eos: bool = False
    # "left" or "right"; None: the tokenizer's own. Last-token pooling reads either.
    padding_side: str | None = None

    def __post_init__(self):
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"model.pooling={self.pooling!r} is not one of {POOLING_MODES}")
        if self.padding_side not in (None, "left", "right"):
            raise ValueError(f"model.padding_side={self.padding_side!r} is not one of left, right, null")


class DualEncoder(nn.Module):
    """Encodes queries and passages into vectors whose dot product is the relevance score.

    The query and passage towers are one shared transformer by default (``shared=True``) or two
    copies of the same starting weights. A tower may be a ``peft.PeftModel`` (LoRA adapters over a frozen
    base); ``tower_options`` records how the towers were loaded, so a checkpoint can rebuild them.
    """

    def __init__(
        self,
        query_model: nn.Module,
        passage_model: nn.Module,
        tokenizer,
        settings: EncoderSettings,
        name_or_path: str = "",
        tower_options: TowerOptions | None = None,
    ):
        super().__init__()
        self.name_or_path = name_or_path
        self.tower_options = tower_options or TowerOptions()
        for tower in (query_model, passage_model):
            freeze_unused_pooler(tower)
        self.query_model = query_model
        # Registering the shared tower twice would save its weights twice in checkpoints.
        self.passage_model = None if settings.shared else passage_model
        self.settings = settings
        self.tokenization = QueryPassageTokenizer(
            tokenizer,
            query_max_length=settings.query_max_length,
            passage_max_length=settings.passage_max_length,
            query_prefix=settings.query_prefix,
            passage_prefix=settings.passage_prefix,
        )

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        pooling: str | None = None,
        normalize: bool | None = None,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
        query_max_length: int | None = None,
        passage_max_length: int | None = None,
        shared: bool | None = None,
        append_eos: bool | None = None,
        padding_side: str | None = None,
        attn_implementation: str | None = "sdpa",
        dtype: str | None = None,
        gradient_checkpointing: bool = False,
        lora: Mapping | None = None,
    ) -> "DualEncoder":
        """Load from a hub id, a plain HF model folder, or a folder this class exported (full weights, or a LoRA
        adapter that names its base model).

        Arguments left as None take the value saved in an exported folder's ``sycl_encoder.json``,
        else the ``EncoderSettings`` default, so an exported model needs no settings at all.
        ``attn_implementation``, ``dtype``, ``gradient_checkpointing`` and ``lora`` say how the towers are loaded
        and trained (``TowerOptions``): with ``lora``, fresh adapters on the loaded weights.
        """
        saved = read_saved_settings(name_or_path)
        given = dict(
            pooling=pooling,
            normalize=normalize,
            query_prefix=query_prefix,
            passage_prefix=passage_prefix,
            query_max_length=query_max_length,
            passage_max_length=passage_max_length,
            shared=shared,
            append_eos=append_eos,
            padding_side=padding_side,
        )
        settings = EncoderSettings(**{**saved, **{k: v for k, v in given.items() if v is not None}})
        options = TowerOptions(
            dtype=dtype,
            attn_implementation=attn_implementation,
            gradient_checkpointing=gradient_checkpointing,
            lora=lora,
        )
        tokenizer = load_pretrained(AutoTokenizer, name_or_path)
        prepare_tokenizer(tokenizer, settings.append_eos, settings.padding_side)
        query_model = load_tower(name_or_path, options)
        passage_path = Path(name_or_path) / PASSAGE_ENCODER_DIR
        if settings.shared:
            passage_model = query_model
        elif passage_path.is_dir():
            passage_model = load_tower(str(passage_path), options)
        else:
            passage_model = load_tower(name_or_path, options)
        return cls(query_model, passage_model, tokenizer, settings, name_or_path=name_or_path, tower_options=options)

    @property
    def passage_tower(self) -> nn.Module:
        return self.query_model if self.passage_model is None else self.passage_model

    def encode_queries(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """input_ids, attention_mask: [N, L]. Returns [N, H]."""
        return self._encode(self.query_model, input_ids, attention_mask)

    def encode_passages(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """input_ids, attention_mask: [N, L]. Returns [N, H]."""
        return self._encode(self.passage_tower, input_ids, attention_mask)

    def _encode(self, model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        embeddings = pool(hidden, attention_mask, self.settings.pooling)
        if embeddings.dtype in (torch.bfloat16, torch.float16):
            # Towers with half-precision weights: scores, normalisation and the loss in float32.
            embeddings = embeddings.float()
        return F.normalize(embeddings, dim=-1) if self.settings.normalize else embeddings

    def adapter_descriptions(self) -> list[dict | None]:
        """Per tower (query, then passage if separate), its LoRA config without provenance; None without LoRA."""
        towers = [self.query_model] + ([self.passage_model] if self.passage_model is not None else [])
        return [adapter_description(tower) for tower in towers]

    def save_pretrained(self, path: str | os.PathLike, merge_lora: bool = True) -> None:
        """Write a folder that ``AutoModel.from_pretrained``, ``SentenceTransformer`` and this class all load.

        With separate towers the root holds the query tower and ``passage_encoder/`` the passage tower,
        each a complete model folder of its own; the root's sentence-transformers modules then route
        ``encode_query`` to the root tower and ``encode_document`` to ``passage_encoder/``.
        A LoRA tower is written with its adapters merged into the weights (``merge_lora``, a plain model folder), or
        as the adapter alone (``adapter_config.json`` naming the base model, ``adapter_model.safetensors``): a
        few MB instead of the whole model, which all three loaders load on top of the base model; with separate
        towers, SentenceTransformer cannot (transformers 5.24 looks for the base model in the Router's subfolder).
        """
        path = Path(path)
        towers = [(self.query_model, path)]
        if self.passage_model is not None:
            towers.append((self.passage_model, path / PASSAGE_ENCODER_DIR))
            if not merge_lora and has_lora(self.passage_model):
                log.warning("%s: separate LoRA towers saved as adapters do not load in SentenceTransformer", path)
        for tower, folder in towers:
            if merge_lora and has_lora(tower):
                tower = merged_copy(tower)
            write_model_folder(tower, self.tokenization.tokenizer, self.settings, folder)
        if self.passage_model is not None:
            write_tower_router(path)
        (path / SETTINGS_FILE).write_text(json.dumps(asdict(self.settings), indent=2) + "\n")


def freeze_unused_pooler(model: nn.Module) -> None:
    """Stop training BERT-style pooler weights: embeddings come from last_hidden_state, never the pooler.

    A trainable parameter that gets no gradient stalls DDP's gradient all-reduce (the bucket holding it
    never completes) and fails the second step; frozen, DDP ignores it. It is still saved on export.
    """
    for name, parameter in model.named_parameters():
        if name.startswith("pooler."):
            parameter.requires_grad_(False)


def read_saved_settings(name_or_path: str) -> dict:
    """Settings saved with a local model folder, or {} for a hub id or a plain HF folder.

    Our own ``sycl_encoder.json`` wins; otherwise a sentence-transformers folder's pooling,
    normalisation, max length and query/document prompts are read from its module files, so a model
    like all-MiniLM-L6-v2 is evaluated the way it was trained (mean pooling, normalised).
    """
    folder = Path(name_or_path)
    if (folder / SETTINGS_FILE).is_file():
        saved = json.loads((folder / SETTINGS_FILE).read_text())
        known = {f.name for f in fields(EncoderSettings)}
        return {k: v for k, v in saved.items() if k in known}
    if not (folder / "modules.json").is_file():
        return {}
    modules = json.loads((folder / "modules.json").read_text())
    settings: dict = {"normalize": any(m.get("type", "").endswith("Normalize") for m in modules)}
    pooling_path = next((m["path"] for m in modules if m.get("type", "").endswith("Pooling")), None)
    if pooling_path and (folder / pooling_path / "config.json").is_file():
        pooling = json.loads((folder / pooling_path / "config.json").read_text())
        mode = pooling.get("pooling_mode")
        if pooling.get("pooling_mode_cls_token") or mode == "cls":
            settings["pooling"] = "cls"
        elif pooling.get("pooling_mode_lasttoken") or mode == "lasttoken":
            settings["pooling"] = "last"
        else:
            settings["pooling"] = "mean"
    if (folder / "sentence_bert_config.json").is_file():
        module_config = json.loads((folder / "sentence_bert_config.json").read_text())
        max_length = module_config.get("max_seq_length")
        if max_length:
            settings["query_max_length"] = settings["passage_max_length"] = int(max_length)
        # sentence-transformers' per-task lengths win over max_seq_length for encode_query / encode_document.
        if module_config.get("query_length"):
            settings["query_max_length"] = int(module_config["query_length"])
        if module_config.get("document_length"):
            settings["passage_max_length"] = int(module_config["document_length"])
    if (folder / "config_sentence_transformers.json").is_file():
        prompts = json.loads((folder / "config_sentence_transformers.json").read_text()).get("prompts") or {}
        settings["query_prefix"] = prompts.get("query", "")
        settings["passage_prefix"] = prompts.get("document", prompts.get("passage", ""))
    return settings


def write_model_folder(model: nn.Module, tokenizer, settings: EncoderSettings, path: Path) -> None:
    """Save one tower as an HF model folder (a ``PeftModel`` saves its adapter alone) plus the sentence-transformers
    module files."""
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if settings.normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        (path / "2_Normalize").mkdir(exist_ok=True)
    write_json(path / "modules.json", modules)
    (path / "1_Pooling").mkdir(exist_ok=True)
    write_json(
        path / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": model.config.hidden_size,
            "pooling_mode_cls_token": settings.pooling == "cls",
            "pooling_mode_mean_tokens": settings.pooling == "mean",
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_lasttoken": settings.pooling == "last",
        },
    )
    # query_length / document_length are what encode_query / encode_document truncate at; max_seq_length
    # only serves a plain encode(), which truncates like a passage.
    write_json(
        path / "sentence_bert_config.json",
        {
            "max_seq_length": settings.passage_max_length,
            "query_length": settings.query_max_length,
            "document_length": settings.passage_max_length,
            "do_lower_case": False,
        },
    )
    write_json(
        path / "config_sentence_transformers.json",
        {
            "prompts": {"query": settings.query_prefix, "document": settings.passage_prefix},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine" if settings.normalize else "dot",
        },
    )


def write_tower_router(path: Path) -> None:
    """Make the root's sentence-transformers modules a Router: queries through the root tower, documents
    through ``passage_encoder/``, then the shared pooling and normalisation the root already lists.

    The Router loads each tower from the folder written by ``write_model_folder``, so no weights are copied.
    A plain ``encode()`` takes the document route.
    """
    modules = json.loads((path / "modules.json").read_text())
    modules[0] = {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Router"}
    write_json(path / "modules.json", modules)
    transformer = "sentence_transformers.models.Transformer"
    write_json(
        path / "router_config.json",
        {
            "types": {".": transformer, PASSAGE_ENCODER_DIR: transformer},
            "structure": {"query": ["."], "document": [PASSAGE_ENCODER_DIR]},
            "parameters": {"default_route": "document", "allow_empty_key": True, "route_mappings": {}},
        },
    )


def write_json(path: Path, content) -> None:
    path.write_text(json.dumps(content, indent=2) + "\n")

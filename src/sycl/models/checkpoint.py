"""Rebuilding a DualEncoder from a Lightning checkpoint written by RetrieverModule."""

from pathlib import Path

import torch

from sycl.models.dual_encoder import DualEncoder


def encoder_from_checkpoint(ckpt_path: str | Path) -> DualEncoder:
    """Load the base model named in the checkpoint (in its dtype, with its LoRA adapters if it had them), then the
    checkpoint's encoder weights.

    A weights-only checkpoint (``callbacks.best_checkpoint``'s default) is enough: the module writes its
    ``sycl_encoder`` entry into every checkpoint, and only ``state_dict`` is read besides.
    """
    ckpt_path = Path(ckpt_path)
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"checkpoint {ckpt_path} does not exist")
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    if not isinstance(checkpoint, dict) or "sycl_encoder" not in checkpoint or "state_dict" not in checkpoint:
        raise ValueError(
            f"{ckpt_path} is not a checkpoint of this project's RetrieverModule (no 'sycl_encoder' entry); "
            "evaluate an exported model folder with model.name_or_path=<run dir>/model instead"
        )
    saved = checkpoint["sycl_encoder"]
    # Checkpoints from before LoRA and dtype options have no tower_options: the defaults loaded them.
    encoder = DualEncoder.from_pretrained(saved["name_or_path"], **saved["settings"], **saved.get("tower_options", {}))
    prefix = "encoder."
    weights = {k[len(prefix) :]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    encoder.load_state_dict(weights)
    return encoder

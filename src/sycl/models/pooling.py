"""Token-to-text pooling of transformer outputs."""

import torch

POOLING_MODES = ("mean", "cls", "last")


def pool(hidden_states: torch.Tensor, attention_mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Reduce token states to one vector per text.

    hidden_states: [N, L, H]; attention_mask: [N, L] with 1 on real tokens. Returns [N, H].
    ``last`` takes the last non-padding token and works for right *and* left padding.
    """
    if mode == "mean":
        mask = attention_mask.unsqueeze(-1).to(hidden_states.dtype)
        return (hidden_states * mask).sum(1) / mask.sum(1).clamp_min(1.0)
    if mode == "cls":
        return hidden_states[:, 0]
    if mode == "last":
        positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        last_index = (attention_mask * positions).argmax(dim=1)
        return hidden_states[torch.arange(hidden_states.shape[0], device=hidden_states.device), last_index]
    raise ValueError(f"unknown pooling {mode!r}; choose one of {POOLING_MODES}")

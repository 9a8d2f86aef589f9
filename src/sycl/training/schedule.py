"""Learning-rate schedule: linear warm-up, then linear decay to zero."""

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def linear_warmup_decay(optimizer: Optimizer, total_steps: int, warmup_fraction: float) -> LambdaLR:
    """LR factor rises 0 -> 1 over ``warmup_fraction * total_steps`` steps, then falls linearly to 0."""
    warmup_steps = int(round(warmup_fraction * total_steps))

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return LambdaLR(optimizer, factor)


def total_optimizer_steps(trainer) -> int:
    """The run's optimizer steps, computed without ``trainer.estimated_stepping_batches``.

    That property builds the trainer's train dataloader before a checkpoint's loop state is restored,
    and Lightning then keeps that loader: a resumed run would replay the epoch from its first batch.
    Asking the datamodule for a throwaway loader leaves the trainer's to be built after the restore.
    """
    if trainer.max_steps > 0:
        return trainer.max_steps
    if trainer.datamodule is None:
        return int(trainer.estimated_stepping_batches)
    batches = len(trainer.datamodule.train_dataloader())
    if isinstance(trainer.limit_train_batches, int):
        batches = min(batches, trainer.limit_train_batches)
    else:
        batches = int(batches * trainer.limit_train_batches)
    return math.ceil(batches / trainer.accumulate_grad_batches) * max(1, trainer.max_epochs)

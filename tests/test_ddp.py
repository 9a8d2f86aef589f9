"""Two CPU processes (gloo) with cross-device negatives train exactly like one process on the whole batch."""

from pathlib import Path

import pytest
import torch
from lightning import Callback

from sycl.training.run import train
from tests.conftest import compose_train_config


class SaveStep(Callback):
    """Saves the first step's loss and (all-reduced) gradients to ``<path>/rank<r>.pt``."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.loss = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.loss = float(outputs["loss"])

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        gradients = {n: p.grad.detach().clone() for n, p in pl_module.named_parameters() if p.grad is not None}
        self.path.mkdir(parents=True, exist_ok=True)
        torch.save({"gradients": gradients}, self.path / f"rank{trainer.global_rank}.pt")

    def on_train_end(self, trainer, pl_module):
        saved = torch.load(self.path / f"rank{trainer.global_rank}.pt")
        saved["loss"] = self.loss
        torch.save(saved, self.path / f"rank{trainer.global_rank}.pt")


def one_step(tmp_path: Path, tiny_model_path: str, devices: int, batch_size: int, loss: str) -> Path:
    out = tmp_path / f"devices{devices}"
    overrides = [
        f"model.name_or_path={tiny_model_path}",
        "model.passage_max_length=32",
        "model.query_max_length=16",
        "+trainer.max_steps=1",
        "trainer.max_epochs=1",
        "logger=csv",
        f"data.batch_size={batch_size}",
        f"loss={loss}",
        "~benchmark",
        "trainer.gradient_clip_val=null",
        f"trainer.devices={devices}",
        "~callbacks.model_checkpoint",
        "~callbacks.retrieval_validation",
        "~callbacks.best_checkpoint",
        "~callbacks.export_encoder",
        "+callbacks.save_step._target_=tests.test_ddp.SaveStep",
        f"+callbacks.save_step.path={out}",
        "data.val_sources=null",
    ]
    if devices > 1:
        overrides.append("+trainer.strategy=ddp_spawn")
    train(compose_train_config(tmp_path / f"run{devices}", overrides))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["wasserstein", "infonce"])
def test_two_processes_with_gathered_negatives_equal_one_process(tmp_path, tiny_model_path, loss):
    single = torch.load(one_step(tmp_path, tiny_model_path, devices=1, batch_size=8, loss=loss) / "rank0.pt")
    double = one_step(tmp_path, tiny_model_path, devices=2, batch_size=4, loss=loss)
    for rank in (0, 1):
        distributed = torch.load(double / f"rank{rank}.pt")
        # Every rank computes the loss on the gathered batch of 8 queries x 32 passages: the same number.
        assert distributed["loss"] == pytest.approx(single["loss"], rel=1e-5)
        for name, gradient in single["gradients"].items():
            torch.testing.assert_close(distributed["gradients"][name], gradient, rtol=1e-4, atol=1e-6, msg=name)

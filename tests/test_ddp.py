"""Two CPU processes (gloo) with cross-device negatives train and validate exactly as one process on the whole batch."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from lightning import Callback

from sycl.losses import duplicate_negative_mask
from sycl.training.run import train
from tests.beir_fixtures import graded_source
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


def one_step(
    tmp_path: Path, tiny_model_path: str, devices: int, batch_size: int, loss: str, extra: tuple[str, ...] = ()
) -> Path:
    out = tmp_path / f"devices{devices}"
    overrides = [
        f"model.name_or_path={tiny_model_path}",
        "model.passage_max_length=32",
        "model.query_max_length=16",
        "trainer.max_steps=1",
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
        "~callbacks.early_stopping",
        "~callbacks.export_encoder",
        "+callbacks.save_step._target_=tests.test_ddp.SaveStep",
        f"+callbacks.save_step.path={out}",
        "data.val_sources=null",
        *extra,
    ]
    if devices > 1:
        overrides.append("trainer.strategy=ddp_spawn")
    train(compose_train_config(tmp_path / f"run{devices}", overrides))
    return out


# Seed 0 puts a passage of query 1 (rank 0's share) into query 5's group (rank 1's share) in the first batch of
# 8: the duplicate-negative mask must then be built from ids that compare across the two processes.
CROSS_RANK_DUPLICATES = ("data=demo_synth_plus_real", "seed=0")


def test_the_cross_rank_case_really_has_a_duplicate_across_ranks(tmp_path, tiny_model_path):
    cfg = compose_train_config(tmp_path, [*CROSS_RANK_DUPLICATES, f"model.name_or_path={tiny_model_path}"])
    datamodule = instantiate(cfg.data, _partial_=True, batch_size=8)(tokenization=instantiate(cfg.model).tokenization)
    datamodule.setup("fit")
    mask = duplicate_negative_mask(next(iter(datamodule.train_dataloader()))["passage_ids"], cfg.data.group_size)
    assert any((row < 4) != (column // cfg.data.group_size < 4) for row, column in (~mask).nonzero().tolist())


@pytest.mark.slow
@pytest.mark.parametrize(
    "loss,extra",
    [("wasserstein", ()), ("infonce", ()), ("wasserstein", CROSS_RANK_DUPLICATES)],
    ids=["wasserstein", "infonce", "wasserstein-cross-rank-duplicates"],
)
def test_two_processes_with_gathered_negatives_equal_one_process(tmp_path, tiny_model_path, loss, extra):
    single = torch.load(one_step(tmp_path, tiny_model_path, 1, batch_size=8, loss=loss, extra=extra) / "rank0.pt")
    double = one_step(tmp_path, tiny_model_path, devices=2, batch_size=4, loss=loss, extra=extra)
    for rank in (0, 1):
        distributed = torch.load(double / f"rank{rank}.pt")
        # Every rank computes the loss on the gathered batch of 8 queries x 32 passages: the same number.
        assert distributed["loss"] == pytest.approx(single["loss"], rel=1e-5)
        for name, gradient in single["gradients"].items():
            torch.testing.assert_close(distributed["gradients"][name], gradient, rtol=1e-4, atol=1e-6, msg=name)


class SaveValidationLoss(Callback):
    """Saves ``val/loss`` after each validation to ``<path>/val_rank<r>.pt``."""

    def __init__(self, path: str):
        self.path = Path(path)

    def on_validation_end(self, trainer, pl_module):
        self.path.mkdir(parents=True, exist_ok=True)
        torch.save(float(trainer.callback_metrics["val/loss"]), self.path / f"val_rank{trainer.global_rank}.pt")


def validate_after_one_step(
    tmp_path: Path, tiny_model_path: str, devices: int, batch_size: int, loss: str, val_source: dict
) -> list[float]:
    """val/loss of every rank after one training step with lr 0 (the initial weights, on any device count)."""
    out = tmp_path / f"val_devices{devices}"
    overrides = [
        f"model.name_or_path={tiny_model_path}",
        "model.passage_max_length=32",
        "model.query_max_length=16",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=1",
        "module.lr=0.0",
        "logger=csv",
        f"data.batch_size={batch_size}",
        f"loss={loss}",
        "~benchmark",
        f"trainer.devices={devices}",
        "~callbacks",
        "+callbacks.save_val._target_=tests.test_ddp.SaveValidationLoss",
        f"+callbacks.save_val.path={out}",
        f"data.val_sources=[{{name: dev, corpus: {val_source['corpus']}, queries: {val_source['queries']}, "
        f"qrels: {val_source['qrels']}}}]",
    ]
    if devices > 1:
        overrides.append("trainer.strategy=ddp_spawn")
    train(compose_train_config(tmp_path / f"val_run{devices}", overrides))
    return [torch.load(out / f"val_rank{rank}.pt") for rank in range(devices)]


@pytest.mark.slow
@pytest.mark.parametrize(
    "num_queries,loss",
    # 5 queries, global batches of 4: the last holds 1 query, rank 1's share is empty (padding only).
    # 7 queries: the last holds 3, split 2 + 1 (uneven shares); the Wasserstein loss spans the gathered batch.
    [(5, "infonce"), (7, "wasserstein")],
    ids=["empty-share", "uneven-shares"],
)
def test_two_processes_validate_any_set_size_as_one_process_does(tmp_path, tiny_model_path, num_queries, loss):
    val_source = graded_source(tmp_path / "dev", num_queries=num_queries)
    (single,) = validate_after_one_step(tmp_path, tiny_model_path, 1, 4, loss, val_source)
    double = validate_after_one_step(tmp_path, tiny_model_path, 2, 2, loss, val_source)
    assert double == pytest.approx([single, single], rel=1e-5)

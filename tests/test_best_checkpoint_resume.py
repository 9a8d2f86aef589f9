"""A run resumed into a new folder keeps comparing against the best checkpoint it had found before."""

from pathlib import Path

import pytest
import torch
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from sycl.training import BestCheckpoint

# val/score per epoch: the best is epoch 1; after it, the run only gets worse than that.
SCORES = [0.5, 0.9, 0.3, 0.4]


class ScriptedScore(LightningModule):
    """One weight, one step per epoch; validation logs ``SCORES[epoch]`` as val/score."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        return (self.weight - 1).pow(2).sum()

    def validation_step(self, batch, batch_idx):
        self.log("val/score", SCORES[self.current_epoch])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return [torch.zeros(1)]

    def val_dataloader(self):
        return [torch.zeros(1)]


def fit(folder: Path, epochs: int, best_class=BestCheckpoint, ckpt_path: Path | None = None) -> ModelCheckpoint:
    best = best_class(
        dirpath=folder, filename="best-{epoch}", monitor="val/score", mode="max", save_top_k=1, save_weights_only=True
    )
    trainer = Trainer(
        max_epochs=epochs,
        callbacks=[ModelCheckpoint(dirpath=folder, save_last=True, save_top_k=0), best],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(ScriptedScore(), ckpt_path=ckpt_path)
    return best


def test_a_resume_into_a_new_folder_keeps_the_best_score_and_copies_its_checkpoint(tmp_path):
    first = fit(tmp_path / "first", epochs=2)
    assert Path(first.best_model_path).name == "best-epoch=1.ckpt"
    resumed = fit(tmp_path / "second", epochs=4, ckpt_path=tmp_path / "first" / "last.ckpt")
    assert float(resumed.best_model_score) == pytest.approx(0.9)  # not epoch 3's 0.4
    assert resumed.best_model_path == str(tmp_path / "second" / "best-epoch=1.ckpt")
    copied = torch.load(resumed.best_model_path, weights_only=False)["state_dict"]
    assert torch.equal(copied["weight"], torch.load(first.best_model_path, weights_only=False)["state_dict"]["weight"])
    assert (tmp_path / "first" / "best-epoch=1.ckpt").is_file()  # the first run's folder is left as it was
    assert sorted(p.name for p in (tmp_path / "second").glob("best-*")) == ["best-epoch=1.ckpt"]

    # Lightning's own ModelCheckpoint drops the score in a new folder and ends with epoch 3 as "best".
    with pytest.warns(UserWarning, match="dirpath has changed"):
        plain = fit(tmp_path / "plain", 4, ModelCheckpoint, tmp_path / "first" / "last.ckpt")
    assert float(plain.best_model_score) == pytest.approx(0.4)


def test_a_record_whose_files_are_gone_starts_afresh_with_a_warning(tmp_path):
    first = fit(tmp_path / "first", epochs=2, best_class=ModelCheckpoint)  # written by Lightning's own class
    Path(first.best_model_path).unlink()
    with pytest.warns(UserWarning, match="is gone"):
        resumed = fit(tmp_path / "second", epochs=4, ckpt_path=tmp_path / "first" / "last.ckpt")
    assert float(resumed.best_model_score) == pytest.approx(0.4)


def test_a_checkpoint_of_lightnings_class_restores_into_this_one(tmp_path):
    fit(tmp_path / "first", epochs=2, best_class=ModelCheckpoint)
    resumed = fit(tmp_path / "second", epochs=4, ckpt_path=tmp_path / "first" / "last.ckpt")
    assert float(resumed.best_model_score) == pytest.approx(0.9)

"""Checkpoint files a run can always resume from: written whole, read back at the point they were written."""

from pathlib import Path
from typing import Any

import torch
from lightning import Trainer
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch.plugins.io import TorchCheckpointIO

from sycl.files import atomic_writer


class ResumableCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO, with an atomic local write and epoch-end fixes on read.

    Write: to a temporary file beside the checkpoint, synced, then renamed over it. Lightning's own save
    stages the bytes in ``tempfile.mkstemp()`` (``$TMPDIR``) and moves them; when ``$TMPDIR`` is another
    filesystem (a node-local disk on a cluster) the move is a copy into ``last.ckpt`` itself, so a job
    killed during it leaves a torn ``last.ckpt`` that no resume can read. Here a kill leaves the previous
    checkpoint and at most a ``.<name>.<pid>.tmp``. Remote paths (``s3://``) keep Lightning's save.

    Read: a weights-only checkpoint (``callbacks.best_checkpoint`` by default) is refused with the way out, as it
    holds no optimizer state to resume; then see ``end_resumed_validation`` and ``finish_epoch_end``. A checkpoint
    written after an epoch's last batch also needs the trainer's validation schedule, which this reader does not
    know: ``RetrieverModule.on_load_checkpoint`` applies ``finish_last_batch`` to it.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if storage_options is not None or not _is_local_file_protocol(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        with atomic_writer(path, "wb") as handle:
            torch.save(checkpoint, handle)

    def load_checkpoint(self, path: str | Path, *args: Any, **kwargs: Any) -> dict[str, Any]:
        checkpoint = super().load_checkpoint(path, *args, **kwargs)
        # Only a Lightning checkpoint has "state_dict": ddp_spawn hands its trained weights back to the launching
        # process as a bare state dict through this method too, and that is no resume.
        if "state_dict" in checkpoint and "optimizer_states" not in checkpoint:
            raise ValueError(
                f"{path} holds the weights only (ModelCheckpoint save_weights_only, the default of "
                "callbacks.best_checkpoint), not the optimizer state a run resumes from: resume from the run's "
                "checkpoints/last.ckpt, or evaluate this one with eval.py ckpt_path=..."
            )
        return finish_epoch_end(end_resumed_validation(checkpoint))


def finish_last_batch(checkpoint: dict[str, Any], trainer: Trainer) -> dict[str, Any]:
    """Record a checkpoint written in ``on_train_batch_end`` of an epoch's last batch, in an epoch that ``trainer``
    validates at its end, as "last batch done, validation under way"; returns it.

    A step checkpoint (``every_n_train_steps``) falls on an epoch's last batch whenever the epoch's batch count is a
    multiple of its interval, and is written before that epoch's validation and ``on_train_epoch_end``. Lightning
    (2.6, ``_FitLoop.reset``) resumes it by counting the epoch as ended, so neither runs: the epoch gets no
    ``val/loss`` or ``val/ndcg@10``, and the best checkpoint and early stopping never see it. Written down here
    instead: the batch completed (the checkpoint callback runs last in ``on_train_batch_end``) and the epoch's
    validation started with none of its batches run, which Lightning resumes as an uninterrupted run goes on: that
    validation, the epoch end, the next epoch. Lightning's logging step is then counted up after the validation, as
    in an uninterrupted run, so every metric keeps its step.

    Only when ``trainer`` validates after the epoch's last batch (``val_check_interval`` 1.0, the default) and this
    epoch is one of its validation epochs (``check_val_every_n_epoch``): where none is due, Lightning would go on
    to draw a batch past the epoch's last, so the checkpoint is returned unchanged, and Lightning skips that epoch's
    end as before (``on_train_epoch_end``; RetrievalValidation's score of an epoch without a validation loop).
    """
    loops = checkpoint.get("loops", {}).get("fit_loop")
    if loops is None or not loops["epoch_loop.batch_progress"]["is_last_batch"]:
        return checkpoint
    epochs, batches = loops["epoch_progress"], loops["epoch_loop.batch_progress"]
    if any(epochs[c]["processed"] != epochs[c]["started"] - 1 for c in ("total", "current")):
        return checkpoint  # after the epoch's end: finish_epoch_end's case
    if any(batches[c]["completed"] != batches[c]["processed"] - 1 for c in ("total", "current")):
        return checkpoint  # after the batch completed: at the end of the epoch's validation, which Lightning resumes
    every = trainer.check_val_every_n_epoch
    epoch = epochs["current"]["processed"]
    # 1.0 validates after an epoch's last batch, and so does 1 (after every batch); other intervals depend on the
    # epoch's batch count, which Lightning only knows later. A time-based interval leaves the attribute unset.
    after_last_batch = getattr(trainer, "val_check_interval", None) == 1.0
    if not (trainer.enable_validation and after_last_batch and every is not None and (epoch + 1) % every == 0):
        return checkpoint
    for counts in ("total", "current"):
        batches[counts]["completed"] = batches[counts]["processed"]
    # One batch started and none processed is how Lightning's counters say "validation under way"; the total counts
    # this epoch's validation batches so far, the current ones those of the validation under way.
    validation = loops["epoch_loop.val_loop.batch_progress"]
    done = validation["total"]["completed"]
    validation["total"] = {"ready": done + 1, "started": done + 1, "processed": done, "completed": done}
    validation["current"] = dict.fromkeys(validation["current"], 0)
    validation["is_last_batch"] = False
    return checkpoint


def end_resumed_validation(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Count a resumed validation that has run to its end as ended; returns the checkpoint.

    Lightning resumes a validation "under way" (``finish_last_batch``, or a checkpoint written during one) from the
    batch its total counters hold as started, and counts every batch it then runs on top: once it has ended, the
    totals still hold that one batch as started and not processed, while the current counters hold none under way.
    A checkpoint written after it in the same epoch (at the epoch's end: the best checkpoint) would then resume into
    that validation again. Dropped here; other checkpoints are returned unchanged.
    """
    validation = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.val_loop.batch_progress")
    if validation is None:
        return checkpoint
    total, current = validation["total"], validation["current"]
    under_way = total["ready"] == total["started"] == total["processed"] + 1 == total["completed"] + 1
    if under_way and current["processed"] == current["started"]:
        total["ready"] = total["started"] = total["processed"]
    return checkpoint


def finish_epoch_end(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Record a checkpoint written in ``on_train_epoch_end`` as "epoch done, next not started"; returns it.

    Checkpoints of epoch-end callbacks (the best checkpoint; any checkpoint of a run without validation)
    are written after the epoch's "processed" count went up but before its "completed" count does. With
    ``trainer.max_steps`` set, Lightning resumes such a checkpoint by finishing that epoch again and then
    counting it a second time (Lightning #19617 is this family), so the next epoch is never trained. The
    position written down here is the one an uninterrupted run has when the next epoch starts, which
    Lightning resumes alike with or without ``max_steps``. Other checkpoints are returned unchanged.
    """
    loops = checkpoint.get("loops", {}).get("fit_loop")
    if loops is None:
        return checkpoint
    epochs, batches = loops["epoch_progress"], loops["epoch_loop.batch_progress"]
    if any(epochs[c]["processed"] != epochs[c]["started"] for c in ("total", "current")):
        return checkpoint
    if any(epochs[c]["completed"] != epochs[c]["processed"] - 1 for c in ("total", "current")):
        return checkpoint
    for counts in ("total", "current"):
        epochs[counts]["completed"] = epochs[counts]["processed"]
    batches["current"] = dict.fromkeys(batches["current"], 0)
    batches["is_last_batch"] = False
    return checkpoint

"""Checkpoint files a run can always resume from: written whole, read back at the point they were written."""

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch.plugins.io import TorchCheckpointIO

from sycl.files import atomic_writer


class ResumableCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO, with an atomic local write and an epoch-end fix on read.

    Write: to a temporary file beside the checkpoint, synced, then renamed over it. Lightning's own save
    stages the bytes in ``tempfile.mkstemp()`` (``$TMPDIR``) and moves them; when ``$TMPDIR`` is another
    filesystem (a node-local disk on a cluster) the move is a copy into ``last.ckpt`` itself, so a job
    killed during it leaves a torn ``last.ckpt`` that no resume can read. Here a kill leaves the previous
    checkpoint and at most a ``.<name>.<pid>.tmp``. Remote paths (``s3://``) keep Lightning's save.

    Read: a weights-only checkpoint (``callbacks.best_checkpoint`` by default) is refused with the way out, as it
    holds no optimizer state to resume; then see ``finish_epoch_end``.
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
        return finish_epoch_end(checkpoint)


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

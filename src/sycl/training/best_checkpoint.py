"""The best-checkpoint record carried into the new run folder of a resumed run."""

import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint

log = logging.getLogger(__name__)


class BestCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose best-k record survives a resume into another folder.

    ``python train.py ckpt_path=<run>/checkpoints/last.ckpt`` starts a new run folder, and Lightning restores a
    checkpoint callback's best score only when its ``dirpath`` is unchanged. Otherwise the score is dropped, the
    first validation after the resume becomes "best" whatever its value, and the run can export a worse model than
    the one it had already found: the resumed run no longer ends as the uninterrupted one would. Here the best
    checkpoints named in the record are copied into the new folder (same file names; the old folder is left as it
    is) and the record is restored pointing at the copies, so the comparison goes on against the same scores.
    A record whose files are gone falls back to Lightning's behaviour, with its warning.
    """

    @property
    def state_key(self) -> str:
        # The key Lightning gives ModelCheckpoint, so checkpoints written with it (or with this class) restore here.
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved_dir = state_dict.get("dirpath", self.dirpath)
        best_k = state_dict.get("best_k_models") or {}
        if self.dirpath is None or saved_dir == self.dirpath or not best_k:
            super().load_state_dict(state_dict)
            return
        missing = [path for path in best_k if not Path(path).is_file()]
        if missing:
            warnings.warn(f"{missing[0]} is gone, so the best score of the resumed run starts afresh", stacklevel=2)
            super().load_state_dict(state_dict)
            return
        copies = {path: copy_into(path, self.dirpath) for path in best_k}
        log.info("resumed with the best checkpoints of %s, copied into %s", saved_dir, self.dirpath)
        super().load_state_dict(
            {
                **state_dict,
                "dirpath": self.dirpath,
                "best_k_models": {copies[path]: score for path, score in best_k.items()},
                "best_model_path": copies.get(state_dict["best_model_path"], ""),
                "kth_best_model_path": copies.get(state_dict.get("kth_best_model_path", ""), ""),
                "last_model_path": "",
            }
        )


def copy_into(path: str, folder: str) -> str:
    """Copy ``path`` into ``folder`` under its own name, atomically (every DDP process may copy the same file)."""
    target = Path(folder) / Path(path).name
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.copyfile(path, partial)
    os.replace(partial, target)
    return str(target)

"""Keeping a multirun going when one of its jobs fails, with the failure recorded next to the job's outputs."""

import json
import logging
import traceback
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

log = logging.getLogger(__name__)

FAILURE_FILE = "failed.json"


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def run_recording_failure(job, output_dir: str | Path, continue_on_failure: bool):
    """Call ``job()``; on an exception write ``failed.json`` (type, message, traceback) to output_dir.

    With ``continue_on_failure`` the exception is swallowed and None returned, so Hydra's launcher
    moves on to the next job of the sweep; otherwise it propagates.
    """
    try:
        return job()
    except Exception as error:
        path = Path(output_dir) / FAILURE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {"error": type(error).__name__, "message": str(error), "traceback": traceback.format_exc()}, indent=2
            )
            + "\n"
        )
        if not continue_on_failure:
            raise
        log.error("job failed (%s: %s); recorded in %s, the sweep continues", type(error).__name__, error, path)
        return None

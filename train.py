"""Train a dual-encoder retriever: python train.py [group=option ...] [key=value ...]"""

import hydra
from omegaconf import DictConfig

import sycl.config  # noqa: F401  (registers the config resolvers)
from sycl.data.errors import DataFormatError
from sycl.entry_errors import exit_briefly_on
from sycl.experiments.failures import in_multirun, run_recording_failure
from sycl.hub import HubFileUnavailable
from sycl.training.run import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Returns ``cfg.optimized_metric`` for sweepers; in a multirun a failing job is recorded, not fatal.

    A bad training file or an ``hf://`` file missing offline ends a single run with one line saying what to fix.
    """
    metrics = exit_briefly_on(
        (DataFormatError, HubFileUnavailable),
        lambda: run_recording_failure(lambda: train(cfg), cfg.paths.output_dir, continue_on_failure=in_multirun()),
    )
    return None if metrics is None else metrics.get(cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()

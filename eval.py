"""Evaluate a retriever: python eval.py [model=<group>] [model.name_or_path=<model>] [ranker=bm25] [key=value ...]"""

import hydra
from omegaconf import DictConfig

import sycl.config  # noqa: F401  (registers the config resolvers)
from sycl.data.errors import DataFormatError
from sycl.entry_errors import exit_briefly_on
from sycl.evaluation.run import evaluate
from sycl.hub import HubFileUnavailable


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> float:
    """A bad dataset file or an ``hf://`` file missing offline: one line that says what to fix, no traceback."""
    results = exit_briefly_on((DataFormatError, HubFileUnavailable), lambda: evaluate(cfg))
    return sum(row["NDCG@10"] for row in results.values()) / len(results)


if __name__ == "__main__":
    main()

"""Evaluate a retriever: python eval.py model.name_or_path=<model> [ranker=bm25] [benchmark=beir] [key=value ...]"""

import hydra
from omegaconf import DictConfig

import sycl.config  # noqa: F401  (registers the config resolvers)
from sycl.evaluation.run import evaluate


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> float:
    results = evaluate(cfg)
    return sum(row["NDCG@10"] for row in results.values()) / len(results)


if __name__ == "__main__":
    main()

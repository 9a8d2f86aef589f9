"""Train a dual-encoder retriever: python train.py [group=option ...] [key=value ...]"""

import hydra
from omegaconf import DictConfig

import sycl.config  # noqa: F401  (registers the config resolvers)
from sycl.training.run import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    return metrics.get(cfg.get("optimized_metric") or "", None)


if __name__ == "__main__":
    main()

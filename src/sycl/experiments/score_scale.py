"""How a model's score scale meets a loss's targets on the training batches: the diagnosis of demo-training forgetting.

    python -m sycl.experiments.score_scale [train.py overrides ...]
    python -m sycl.experiments.score_scale model.name_or_path=<run dir>/model   # a trained model

For the first ``batches`` training batches (epoch 0's order, the encoder in eval mode) it reports, averaged
over queries: the share whose top-scored passage of the batch is one of their own; the predicted softmax mass
P = softmax(S / temperature) on each query's own group; the target mass T = softmax(Y / label_temperature) the
graded losses put there (Y: the group's labels, 0 for every in-batch negative, as in METHOD.md); the mean score
of each level and of the in-batch negatives; and the temperature at which P's own-group mass would equal T's.
When P's own-group mass is far above T's, a distribution loss (Wasserstein, ListNet) can only lower it by
raising the scores of unrelated in-batch passages towards the relevant ones and lowering the top level's: it
compresses the score scale the base model learned (see README, "Why demo training can hurt a real collection").
"""

import math
import os
import sys
from dataclasses import dataclass

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from sycl.config import repo_root  # importing sycl.config also registers the config resolvers
from sycl.losses.base import expand_group_labels, own_group_columns


@dataclass(frozen=True)
class ScoreScale:
    """Means over the queries of the batches read; masses are fractions in [0, 1], scores in the model's units."""

    queries: int
    own_top1: float
    predicted_own_mass: float
    target_own_mass: float
    level_scores: dict[int, float]
    in_batch_score: float
    matched_temperature: float


def own_group_mass(scores: torch.Tensor, group_size: int, temperature: float) -> torch.Tensor:
    """scores [B, B*K] -> [B], the softmax(scores / temperature) mass of each row's own group."""
    probabilities = torch.softmax(scores.double() / temperature, dim=1)
    return probabilities.gather(1, own_group_columns(scores.shape[0], group_size, scores.device)).sum(1)


def matched_temperature(scores: list[torch.Tensor], group_size: int, target: float) -> float:
    """The temperature at which the mean own-group mass of ``scores`` equals ``target`` (bisection in log space).

    The mass falls monotonically from 1 towards K/(B*K) as the temperature grows, so the root is unique when
    ``target`` lies between those bounds; returns inf if the scores cannot reach it.
    """

    def mass(temperature: float) -> float:
        return torch.cat([own_group_mass(s, group_size, temperature) for s in scores]).mean().item()

    low, high = 1e-4, 1e4
    if not mass(high) <= target <= mass(low):
        return math.inf
    for _ in range(60):
        middle = math.sqrt(low * high)
        low, high = (middle, high) if mass(middle) > target else (low, middle)
    return math.sqrt(low * high)


@torch.no_grad()
def measure(cfg, batches: int = 4) -> ScoreScale:
    """Score scale of ``cfg.model`` on the first ``batches`` training batches of ``cfg.data``, against ``cfg.loss``."""
    encoder = instantiate(cfg.model).eval()
    datamodule = instantiate(cfg.data, _partial_=True)(tokenization=encoder.tokenization)
    datamodule.setup("fit")
    temperature = float(cfg.temperature)
    label_temperature = float(cfg.loss.get("label_temperature", 1.0))
    all_scores, predicted, target, in_batch, own_top1 = [], [], [], [], []
    level_sums: dict[int, list[float]] = {}
    for index, batch in enumerate(datamodule.train_dataloader()):
        if index >= batches:
            break
        scores = encoder.encode_queries(**batch["query"]) @ encoder.encode_passages(**batch["passages"]).T
        labels = batch["labels"].double()  # [B, K]
        batch_size, group_size = labels.shape
        own = own_group_columns(batch_size, group_size)
        targets = torch.softmax(expand_group_labels(labels / label_temperature, scores.shape[1]), dim=1)
        all_scores.append(scores)
        # The Wasserstein loss cannot tell rows apart (it matches the set of rows); this says whether each
        # query's best-scored passage is still one of its own.
        own_top1.append((scores.argmax(1) // group_size == torch.arange(batch_size)).double())
        predicted.append(own_group_mass(scores, group_size, temperature))
        target.append(targets.gather(1, own).sum(1))
        others = torch.ones_like(scores, dtype=torch.bool).scatter_(1, own, False)
        in_batch.append(scores[others])
        for level, score in zip(labels.flatten().tolist(), scores.gather(1, own).flatten().tolist(), strict=True):
            level_sums.setdefault(int(level), []).append(score)
    target_mass = torch.cat(target).mean().item()
    return ScoreScale(
        queries=sum(len(p) for p in predicted),
        own_top1=torch.cat(own_top1).mean().item(),
        predicted_own_mass=torch.cat(predicted).mean().item(),
        target_own_mass=target_mass,
        level_scores={level: sum(v) / len(v) for level, v in sorted(level_sums.items(), reverse=True)},
        in_batch_score=torch.cat(in_batch).mean().item(),
        matched_temperature=matched_temperature(all_scores, group_size, target_mass),
    )


def main(overrides: list[str]) -> None:
    with initialize_config_dir(config_dir=os.path.join(repo_root(), "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    scale = measure(cfg)
    levels = ", ".join(f"level {level}: {score:.3f}" for level, score in scale.level_scores.items())
    print(
        f"{scale.queries} training queries, temperature {cfg.temperature}\n"
        f"queries whose top-scored passage is one of their own: {scale.own_top1:.3f}\n"
        f"own-group mass: predicted {scale.predicted_own_mass:.3f}, target {scale.target_own_mass:.3f}\n"
        f"mean score: {levels}, in-batch negatives: {scale.in_batch_score:.3f}\n"
        f"temperature at which predicted = target own-group mass: {scale.matched_temperature:.3f}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])

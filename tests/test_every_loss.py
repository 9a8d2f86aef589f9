"""One contract for every loss config in conf/loss/: adding a loss adds it to these tests."""

from pathlib import Path

import numpy as np
import ot
import pytest
import torch
from hydra.utils import instantiate

from sycl.losses import GradedListLoss, OrdinalWassersteinLoss, expand_group_labels
from tests.conftest import CONF_DIR, compose_train_config

LOSS_NAMES = sorted(path.stem for path in (Path(CONF_DIR) / "loss").glob("*.yaml"))


def build_loss(name: str, tmp_path: Path, temperature: float = 0.5):
    return instantiate(compose_train_config(tmp_path, [f"loss={name}", f"temperature={temperature}"]).loss)


def graded_labels(batch_size: int, group_size: int, seed: int) -> torch.Tensor:
    """Random graded labels with a unique top label first (what binary data gives InfoNCE)."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (batch_size, group_size), generator=generator).double()
    labels[:, 0] = 3.0
    return labels


def test_every_loss_config_is_covered():
    assert {"infonce", "wasserstein", "ordinal_wasserstein", "listnet", "bce", "ranknet", "lambdaloss"} <= set(
        LOSS_NAMES
    )


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_finite_value_and_gradients_on_random_graded_inputs(name, tmp_path):
    loss = build_loss(name, tmp_path)
    labels = graded_labels(6, 4, seed=1)
    scores = torch.randn(6, 24, dtype=torch.float64, requires_grad=True)
    value = loss(scores, labels)
    value.backward()
    assert value.dim() == 0 and torch.isfinite(value)
    assert torch.isfinite(scores.grad).all() and scores.grad.abs().sum() > 0


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_lower_loss_when_scores_agree_with_labels_than_when_reversed(name, tmp_path):
    loss = build_loss(name, tmp_path, temperature=0.5)
    for seed in range(3):
        labels = graded_labels(5, 4, seed)
        # temperature * labels: softmax(scores / temperature) is then the target distribution itself.
        # (A sharper "agreement" can lose to reversed scores under the reference Wasserstein loss: its
        # target puts most mass on in-batch negatives, see test_losses.)
        agree = expand_group_labels(labels, 20) * 0.5
        assert loss(agree, labels).item() < loss(-agree, labels).item(), f"seed {seed}"


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_gradcheck_in_float64(name, tmp_path):
    loss = build_loss(name, tmp_path)
    labels = graded_labels(3, 3, seed=2)
    scores = (torch.randn(3, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(3))).requires_grad_(True)
    # Central differences of a loss that is a difference of traces (wasserstein) need a larger step.
    assert torch.autograd.gradcheck(lambda s: loss(s, labels), (scores,), eps=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", [n for n in LOSS_NAMES if n != "infonce"])
def test_graded_options_change_the_loss(name, tmp_path):
    loss = build_loss(name, tmp_path)
    assert isinstance(loss, GradedListLoss)
    labels = graded_labels(4, 3, seed=4)
    scores = torch.randn(4, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    reference = loss(scores, labels).item()
    loss.in_batch_negatives = "exclude"
    assert loss(scores, labels).item() != pytest.approx(reference)
    loss.in_batch_negatives, loss.label_temperature = "label0", 0.3
    changes_with_label_temperature = name in ("wasserstein", "ordinal_wasserstein", "listnet")
    assert (loss(scores, labels).item() != pytest.approx(reference)) == changes_with_label_temperature


def test_ordinal_wasserstein_equals_pot_emd2_over_passages():
    loss = OrdinalWassersteinLoss(temperature=0.7, label_temperature=0.5, in_batch_weight=0.3)
    generator = torch.Generator().manual_seed(6)
    labels = torch.randint(0, 4, (5, 4), generator=generator).double()
    scores = torch.randn(5, 20, dtype=torch.float64, generator=generator)
    kept = torch.ones_like(scores, dtype=torch.bool)
    candidate_scores, candidate_labels, in_batch, _ = loss.candidates(scores, labels, kept)
    predicted = torch.softmax(candidate_scores / 0.7, dim=1).numpy()
    target = loss.target_distribution(candidate_labels, in_batch, kept).numpy()
    per_query = []
    for i in range(5):
        level = candidate_labels[i].numpy()
        cost = np.abs(level[:, None] - level[None, :])  # moving mass between passages costs their level distance
        per_query.append(ot.emd2(predicted[i], target[i], cost))
    assert loss(scores, labels).item() == pytest.approx(float(np.mean(per_query)), abs=1e-9)


def test_ordinal_wasserstein_on_a_hand_worked_three_passage_example():
    # One query, passages at levels 2, 1, 0, own group only. Predicted p = (0.2, 0.3, 0.5).
    # Target softmax(2, 1, 0) = (0.665241, 0.244728, 0.090031).
    # W1 on the line = sum over the gaps between levels of |CDF_p - CDF_t|:
    #   level 0 -> 1: |0.5 - 0.090031| = 0.409969;  level 1 -> 2: |0.8 - 0.334759| = 0.465241;  total 0.875210.
    loss = OrdinalWassersteinLoss(temperature=1.0, in_batch_negatives="exclude")
    scores = torch.log(torch.tensor([[0.2, 0.3, 0.5]], dtype=torch.float64))
    labels = torch.tensor([[2.0, 1.0, 0.0]], dtype=torch.float64)
    assert loss(scores, labels).item() == pytest.approx(0.875210, abs=1e-6)

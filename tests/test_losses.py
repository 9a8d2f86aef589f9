"""Loss properties: the Wasserstein loss against an independent full-covariance computation, InfoNCE by hand."""

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from sycl.losses import InfoNCELoss, WassersteinLoss, expand_group_labels


def random_batch(batch_size=6, group_size=4, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(batch_size, batch_size * group_size, generator=generator, dtype=dtype) * 2
    labels = torch.randint(0, 4, (batch_size, group_size), generator=generator).to(dtype)
    return scores, labels


def reference_frechet(scores: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """METHOD.md's formula with full (B*K) x (B*K) covariances and scipy's matrix square root."""
    batch_size, group_size = labels.shape
    predicted = scipy.special.softmax(scores / temperature, axis=1)
    expanded = np.zeros_like(scores)
    for i in range(batch_size):
        expanded[i, i * group_size : (i + 1) * group_size] = labels[i]
    return frechet_of_distributions(predicted, scipy.special.softmax(expanded, axis=1))


def frechet_of_distributions(predicted: np.ndarray, target: np.ndarray) -> float:
    """Squared Frechet distance between Gaussians fitted to the rows of predicted and target, [B, D] each."""
    mu_p, mu_t = predicted.mean(0), target.mean(0)
    sigma_p, sigma_t = np.cov(predicted, rowvar=False), np.cov(target, rowvar=False)  # 1/(B-1)
    root_p = scipy.linalg.sqrtm(sigma_p)
    cross = scipy.linalg.sqrtm(root_p @ sigma_t @ root_p)
    return float(((mu_p - mu_t) ** 2).sum() + np.trace(sigma_p) + np.trace(sigma_t) - 2 * np.trace(cross).real)


@pytest.mark.parametrize("seed,batch_size,group_size,temperature", [(0, 4, 3, 1.0), (1, 6, 4, 0.5), (2, 8, 7, 2.0)])
def test_wasserstein_matches_full_covariance_computation(seed, batch_size, group_size, temperature):
    scores, labels = random_batch(batch_size, group_size, seed)
    ours = WassersteinLoss(temperature=temperature)(scores, labels).item()
    expected = reference_frechet(scores.numpy(), labels.numpy(), temperature)
    assert ours == pytest.approx(expected, abs=1e-6)
    assert ours > 1e-3  # random scores are far from the labels: the comparison is not between two zeros


def test_wasserstein_is_zero_when_predictions_equal_targets():
    _, labels = random_batch(5, 4, seed=3)
    scores = expand_group_labels(labels, 20)  # softmax(scores / 1) == softmax(Y)
    assert abs(WassersteinLoss(temperature=1.0)(scores, labels).item()) < 1e-6


def test_wasserstein_is_invariant_to_permuting_queries():
    scores, labels = random_batch(6, 4, seed=4)
    permutation = torch.tensor([3, 0, 5, 1, 4, 2])
    loss = WassersteinLoss()
    # Permute only the rows: each query keeps its own row of scores but the pairing with target rows changes.
    assert loss(scores[permutation], labels).item() == pytest.approx(loss(scores, labels).item(), abs=1e-9)


def test_wasserstein_gradient_matches_finite_differences():
    scores, labels = random_batch(4, 3, seed=5)
    scores.requires_grad_(True)
    loss = WassersteinLoss(temperature=0.7)
    # A larger step than the default: the loss is a difference of traces and central differences cancel badly.
    assert torch.autograd.gradcheck(lambda s: loss(s, labels), (scores,), eps=1e-4, atol=1e-6)


def test_wasserstein_gradient_is_finite_with_repeated_rows():
    # Identical predicted rows give a rank-deficient covariance: the epsilon keeps the sqrt's gradient finite.
    scores = torch.zeros(4, 12, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([[3.0, 2, 1], [3, 2, 1], [3, 2, 1], [3, 2, 1]], dtype=torch.float64)
    WassersteinLoss()(scores, labels).backward()
    assert torch.isfinite(scores.grad).all()


def test_wasserstein_target_mass_mostly_on_in_batch_negatives_at_reference_batch():
    labels = torch.tensor([[3.0, 2.0, 1.0, 0.0]]).repeat(64, 1)
    target = torch.softmax(expand_group_labels(labels, 256), dim=1)
    own_group = target[0, :4].sum().item()
    assert 1 - own_group == pytest.approx(0.89, abs=0.01)  # METHOD.md: about 89% at B=64, K=4


def test_wasserstein_keeps_the_score_dtype_and_needs_two_queries():
    scores, labels = random_batch(3, 2, dtype=torch.float32)
    assert WassersteinLoss()(scores, labels).dtype == torch.float32
    with pytest.raises(ValueError, match="at least 2 queries"):
        WassersteinLoss()(scores[:1, :2], labels[:1])


def test_infonce_equals_cross_entropy_on_first_passage_of_each_group():
    scores, labels = random_batch(5, 3, seed=6)
    expected = F.cross_entropy(scores / 0.1, torch.tensor([0, 3, 6, 9, 12]))
    assert InfoNCELoss(temperature=0.1)(scores, labels).item() == pytest.approx(expected.item())


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"expected \[4, 12\]"):
        WassersteinLoss()(torch.zeros(4, 10), torch.zeros(4, 3))


def test_wasserstein_never_forms_a_matrix_of_the_size_of_the_full_covariance():
    batch_size, group_size = 64, 8  # B*K = 512: a (B*K) x (B*K) matrix has 262,144 entries, [B, B*K] 32,768
    scores, labels = random_batch(batch_size, group_size, dtype=torch.float32)
    scores.requires_grad_(True)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as profile:
        WassersteinLoss(temperature=0.05)(scores, labels).backward()
    sizes = [
        (event.name, shape)
        for event in profile.events()
        for shape in event.input_shapes
        if isinstance(shape, list) and shape and all(isinstance(d, int) for d in shape)
    ]
    assert len(sizes) > 50  # forward and backward ops were recorded
    largest = max(sizes, key=lambda item: int(np.prod(item[1])))
    assert int(np.prod(largest[1])) <= batch_size * batch_size * group_size, largest

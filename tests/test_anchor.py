"""The anchor to the base model's scores: its KL against an independent computation, and through training."""

import csv

import pytest
import torch
from scipy.special import rel_entr, softmax

from sycl.losses import WassersteinLoss
from sycl.models import DualEncoder
from sycl.training import GradCacheRetrieverModule, RetrieverModule
from sycl.training.anchor import ScoreAnchor
from sycl.training.run import train
from tests.conftest import compose_train_config
from tests.test_gradcache import attached, batch_of, gradients
from tests.test_train import tiny_overrides


def test_divergence_is_the_mean_row_kl_of_the_base_distribution_to_the_trained_one_over_kept_columns(tiny_model_path):
    anchor = ScoreAnchor(DualEncoder.from_pretrained(tiny_model_path), temperature=0.5)
    scores, base = torch.randn(3, 6, dtype=torch.float64), torch.randn(3, 6, dtype=torch.float64)
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[1, 4] = False
    expected = []
    for row in range(3):
        kept = mask[row].numpy()
        p, q = softmax(base[row].numpy()[kept] / 0.5), softmax(scores[row].numpy()[kept] / 0.5)
        expected.append(rel_entr(p, q).sum())
    assert anchor.divergence(scores, base, mask).item() == pytest.approx(sum(expected) / 3, rel=1e-5)
    assert anchor.divergence(base, base, mask).item() == pytest.approx(0.0, abs=1e-7)


def test_anchor_weights_stay_out_of_the_optimizer_and_checkpoints(tiny_model_path):
    encoder = DualEncoder.from_pretrained(tiny_model_path)
    module = RetrieverModule(encoder, WassersteinLoss(), anchor_weight=1.0)
    assert not any(name.startswith("anchor") for name in module.state_dict())
    assert all(not p.requires_grad for p in module.anchor.base.parameters())
    assert sum(p.numel() for p in module.parameters()) == sum(p.numel() for p in encoder.parameters())


def test_gradcache_step_with_the_anchor_equals_the_uncached_step(tiny_model_path):
    encoder = DualEncoder.from_pretrained(tiny_model_path, query_max_length=16, passage_max_length=16).double()
    batch = batch_of(encoder)
    plain = attached(RetrieverModule(encoder, WassersteinLoss(temperature=0.5), anchor_weight=2.0))
    with torch.no_grad():  # move the trained encoder away from the anchor's copy, so the KL has a gradient
        for parameter in encoder.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    plain.log = lambda *args, **kwargs: None  # outside a fit loop
    expected_loss = plain.objective(plain(batch), batch)
    expected_loss.backward()
    expected = gradients(plain)
    plain.zero_grad()
    cached = attached(
        GradCacheRetrieverModule(encoder, WassersteinLoss(temperature=0.5), anchor_weight=2.0, chunk_size=4)
    )
    cached.anchor = plain.anchor  # the same base model (the cached module would copy the moved encoder)
    cached.log = lambda *args, **kwargs: None
    assert cached.cached_backward(batch).item() == pytest.approx(expected_loss.item(), rel=1e-12)
    for parameter, value in expected.items():
        torch.testing.assert_close(gradients(cached)[parameter], value, rtol=1e-9, atol=1e-12, msg=parameter)


def test_a_run_with_the_anchor_logs_zero_divergence_at_its_first_step_then_a_positive_one(tmp_path, tiny_model_path):
    overrides = tiny_overrides(tiny_model_path, steps=3) + ["module.anchor_weight=1.0", "module.lr=1e-3", "~benchmark"]
    train(compose_train_config(tmp_path, overrides))
    rows = csv.DictReader((tmp_path / "csv" / "version_0" / "metrics.csv").open())
    divergences = [float(r["train/anchor_kl"]) for r in rows if r.get("train/anchor_kl")]
    # The tiny model has no dropout: before the first update the trained encoder is the base model.
    assert len(divergences) == 3 and divergences[0] == pytest.approx(0.0, abs=1e-6) and divergences[-1] > 1e-6


def test_matched_temperature_gives_the_target_own_group_mass():
    from sycl.experiments.score_scale import matched_temperature, own_group_mass

    torch.manual_seed(0)
    scores = [torch.randn(4, 12) + 3 * torch.eye(4).repeat_interleave(3, dim=1) for _ in range(2)]
    temperature = matched_temperature(scores, group_size=3, target=0.6)
    masses = torch.cat([own_group_mass(s, 3, temperature) for s in scores])
    assert masses.mean().item() == pytest.approx(0.6, abs=1e-6)
    assert matched_temperature(scores, group_size=3, target=0.1) == float("inf")  # below the uniform 3/12


def test_top_k_kept_counts_the_shared_members_of_each_querys_top_k_in_trec_order():
    from sycl.experiments.ranking_drift import top_k_kept

    base = {"q1": {"a": 3.0, "b": 2.0, "c": 1.0}, "q2": {"x": 1.0, "y": 1.0, "z": 0.5}}
    # q1 keeps a (b falls below c); q2's tie is broken by id descending as trec_eval does: y, then x.
    trained = {"q1": {"a": 3.0, "c": 2.5, "b": 0.1}, "q2": {"y": 2.0, "z": 1.5, "x": 0.0}}
    assert top_k_kept(base, trained, k=2) == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert top_k_kept(base, base, k=2) == 1.0

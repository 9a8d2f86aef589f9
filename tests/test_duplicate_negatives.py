"""A passage of a query's own group that recurs in another group of the batch is not that query's negative."""

import copy
from pathlib import Path

import numpy as np
import ot
import pytest
import torch
from hydra.utils import instantiate

from sycl.data.collator import GroupCollator
from sycl.losses import GradedListLoss, duplicate_negative_mask, expand_group_labels
from sycl.models import DualEncoder
from sycl.training import RetrieverModule
from tests.conftest import CONF_DIR, compose_train_config
from tests.test_gradcache import attached, batch_of
from tests.test_losses import frechet_of_distributions

LOSS_NAMES = sorted(path.stem for path in (Path(CONF_DIR) / "loss").glob("*.yaml"))
PER_QUERY_LOSSES = [name for name in LOSS_NAMES if name != "wasserstein"]
REFERENCE_EXPERIMENTS = [
    "real_binary_infonce",
    "synth_binary_infonce",
    "synth_multilevel_wasserstein",
    "synth_plus_real_wasserstein",
]


def rows_with_own_passage_as_negative(batch: dict, column_mask: torch.Tensor | None) -> int:
    """The case's count: query rows holding, in a column that counts, another group's copy (same tokens) of
    one of their own passages."""
    batch_size, group_size = batch["labels"].shape
    ids, attention = batch["passages"]["input_ids"], batch["passages"]["attention_mask"].bool()
    tokens = [tuple(ids[c][attention[c]].tolist()) for c in range(ids.shape[0])]
    rows = 0
    for a in range(batch_size):
        own = {tokens[c] for c in range(a * group_size, (a + 1) * group_size)}
        counts = column_mask[a] if column_mask is not None else [True] * len(tokens)
        rows += any(c // group_size != a and tokens[c] in own and counts[c] for c in range(len(tokens)))
    return rows


def test_no_row_keeps_its_own_passage_as_a_negative_in_the_demo_recipe(tmp_path, tiny_model_path):
    cfg = compose_train_config(
        tmp_path, ["experiment=demo_synth_plus_real_wasserstein", f"model.name_or_path={tiny_model_path}"]
    )
    encoder = instantiate(cfg.model)
    datamodule = instantiate(cfg.data, _partial_=True)(tokenization=encoder.tokenization)
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    module = attached(RetrieverModule(encoder, instantiate(cfg.loss)))
    for epoch in (0, 1, 2):
        loader.batch_sampler.set_epoch(epoch)
        before = after = 0
        with torch.no_grad():
            for batch in loader:
                _, _, column_mask = module(batch)
                before += rows_with_own_passage_as_negative(batch, None)  # the reference: every column counts
                after += rows_with_own_passage_as_negative(batch, column_mask)
        assert before > 0, f"epoch {epoch}: the recipe repeats no passage across groups: nothing tested"
        assert after == 0, f"epoch {epoch}"


def test_passage_ids_compare_across_separately_collated_shares(tiny_model_path):
    encoder = DualEncoder.from_pretrained(tiny_model_path, query_max_length=16, passage_max_length=16)
    whole = batch_of(encoder, batch_size=4)
    items = [
        {"query_id": str(i), "query": "q", "passages": list(passages), "labels": [3.0, 1.0, 0.0]}
        for i, passages in enumerate(
            [["a b", "c d", "e f"], ["g h", "i j", "k l"], ["c d", "m n", "o p"], ["q r", "s t", "a b"]]
        )
    ]
    collate = GroupCollator(encoder.tokenization)
    # What two devices gather: ids of each half collated on its own, padded to different lengths.
    gathered = torch.cat([collate(items[:2])["passage_ids"], collate(items[2:])["passage_ids"]])
    assert torch.equal(gathered, collate(items)["passage_ids"])
    mask = duplicate_negative_mask(gathered, 3)
    # Row 0 holds "a b" and "c d": their copies in groups 2 and 3 are dropped from row 0, and vice versa.
    assert sorted((~mask).nonzero().tolist()) == [[0, 6], [0, 11], [2, 1], [3, 0]]
    assert mask.sum() == 4 * 12 - 4 and whole["passage_ids"].dtype == torch.long


def random_case(batch_size: int = 4, group_size: int = 3, seed: int = 0):
    """Scores [B, B*K], graded labels [B, K] (unique top label first) and a mask dropping in-batch columns."""
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(batch_size, batch_size * group_size, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 3, (batch_size, group_size), generator=generator).double()
    labels[:, 0] = 3.0
    column_mask = torch.ones_like(scores, dtype=torch.bool)
    for row, column in [(0, 4), (0, 9), (1, 0), (2, 11), (3, 2)]:  # in-batch columns only
        column_mask[row, column] = False
    return scores, labels, column_mask


def one_query_loss(loss, scores_row: torch.Tensor, labels_row: torch.Tensor, columns: list[int], own: list[int]):
    """The loss of one query ranked over ``columns`` only, the deleted columns physically absent.

    Its own passages come first with their labels, the other kept columns after them with label 0. The
    graded losses see them all as one own group (``exclude``): with in_batch_weight 1 an in-batch negative
    is exactly a label-0 passage of the list, so nothing else changes.
    """
    ordered = own + [c for c in columns if c not in own]
    single = copy.deepcopy(loss)
    if isinstance(single, GradedListLoss):
        single.in_batch_negatives = "exclude"
    row_labels = torch.cat([labels_row, labels_row.new_zeros(len(ordered) - len(own))])
    return single(scores_row[ordered][None], row_labels[None]).item()


def pairs_of_row(labels_row: torch.Tensor, kept_labels: torch.Tensor) -> int:
    return int((labels_row[:, None] > kept_labels[None, :]).sum())


@pytest.mark.parametrize("name", PER_QUERY_LOSSES)
def test_a_masked_column_counts_as_if_it_were_deleted_from_the_row(name, tmp_path):
    loss = instantiate(compose_train_config(tmp_path, [f"loss={name}", "temperature=0.5"]).loss)
    if isinstance(loss, GradedListLoss):
        loss.in_batch_weight = 1.0
    scores, labels, column_mask = random_case()
    batch_size, group_size = labels.shape
    values, weights = [], []
    for row in range(batch_size):
        own = list(range(row * group_size, (row + 1) * group_size))
        columns = column_mask[row].nonzero().flatten().tolist()
        values.append(one_query_loss(loss, scores[row], labels[row], columns, own))
        expanded = expand_group_labels(labels, scores.shape[1])[row, columns]
        # How the loss averages its rows: per term (bce), per ordered pair (ranknet), else per query.
        weights.append({"bce": len(columns), "ranknet": pairs_of_row(labels[row], expanded)}.get(name, 1))
    expected = float(np.average(values, weights=weights))
    scores.requires_grad_(True)
    value = loss(scores, labels, column_mask)
    value.backward()
    assert value.item() == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert value.item() != pytest.approx(loss(scores, labels).item(), rel=1e-6)  # the mask does change it
    assert torch.isfinite(scores.grad).all() and (scores.grad[~column_mask] == 0).all()


def test_ordinal_wasserstein_with_its_default_in_batch_weight_deletes_the_masked_columns(tmp_path):
    # in_batch_weight 0: in-batch negatives get predicted but no target mass; a deleted column gets neither.
    loss = instantiate(compose_train_config(tmp_path, ["loss=ordinal_wasserstein", "temperature=0.5"]).loss)
    assert loss.in_batch_weight == 0.0
    scores, labels, column_mask = random_case(seed=1)
    batch_size, group_size = labels.shape
    expanded = expand_group_labels(labels, scores.shape[1])
    distances = []
    for row in range(batch_size):
        columns = column_mask[row].nonzero().flatten().tolist()
        predicted = torch.softmax(scores[row, columns] / 0.5, dim=0).numpy()
        own = np.array([row * group_size <= c < (row + 1) * group_size for c in columns])
        target = np.where(own, np.exp(expanded[row, columns].numpy()), 0.0)
        level = expanded[row, columns].numpy()
        distances.append(ot.emd2(predicted, target / target.sum(), np.abs(level[:, None] - level[None, :])))
    assert loss(scores, labels, column_mask).item() == pytest.approx(float(np.mean(distances)), abs=1e-9)


def test_wasserstein_gives_a_masked_column_no_predicted_and_no_target_mass(tmp_path):
    loss = instantiate(compose_train_config(tmp_path, ["loss=wasserstein", "temperature=0.5"]).loss)
    scores, labels, column_mask = random_case(seed=2)
    expanded = expand_group_labels(labels, scores.shape[1])
    # Row by row, both distributions live on the kept columns and are 0 on the masked ones; the rows stay
    # samples in R^(B*K), so the masked column remains a dimension (it cannot be deleted from one row only).
    predicted = torch.softmax((scores / 0.5).masked_fill(~column_mask, float("-inf")), dim=1).numpy()
    target = torch.softmax(expanded.masked_fill(~column_mask, float("-inf")), dim=1).numpy()
    assert predicted[~column_mask.numpy()].max() == 0.0 and target[~column_mask.numpy()].max() == 0.0
    scores.requires_grad_(True)
    value = loss(scores, labels, column_mask)
    value.backward()
    assert value.item() == pytest.approx(frechet_of_distributions(predicted, target), abs=1e-6)
    assert torch.isfinite(value) and torch.isfinite(scores.grad).all() and (scores.grad[~column_mask] == 0).all()


def test_a_mask_that_drops_an_own_passage_is_refused(tmp_path):
    scores, labels, column_mask = random_case()
    column_mask[1, 4] = False  # query 1's own column
    loss = instantiate(compose_train_config(tmp_path, ["loss=listnet"]).loss)
    with pytest.raises(ValueError, match="own group"):
        loss(scores, labels, column_mask)


def test_without_the_option_the_module_passes_no_mask(tiny_model_path):
    encoder = DualEncoder.from_pretrained(tiny_model_path, query_max_length=16, passage_max_length=16)
    module = attached(RetrieverModule(encoder, instantiate({"_target_": "sycl.losses.InfoNCELoss"})))
    batch = batch_of(encoder)  # query 0's last passage is query 1's first
    with torch.no_grad():
        assert module(batch)[2].logical_not().sum() == 2  # dropped from row 0 and from row 1
        module.hparams.mask_duplicate_negatives = False
        assert module(batch)[2] is None


@pytest.mark.parametrize("name", REFERENCE_EXPERIMENTS)
def test_reference_experiments_keep_duplicate_negatives_as_the_reference_does(name, tmp_path):
    assert compose_train_config(tmp_path, [f"experiment={name}"]).module.mask_duplicate_negatives is False
    assert compose_train_config(tmp_path, [f"experiment=demo_{name}"]).module.mask_duplicate_negatives is True

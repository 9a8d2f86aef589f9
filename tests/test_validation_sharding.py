"""Validation batches sharded over devices: equal, non-empty, marked shares, and padding that never reaches the loss."""

import pytest
import torch
from hydra.utils import instantiate
from lightning import Callback

from sycl.data.batching import EpochBatchSampler, PaddedShareDataset
from sycl.data.collator import GroupCollator
from sycl.losses import InfoNCELoss
from sycl.models import DualEncoder
from sycl.training import RetrieverModule
from sycl.training.run import train
from tests.beir_fixtures import graded_source
from tests.conftest import compose_train_config
from tests.test_gradcache import attached, batch_of


@pytest.mark.parametrize(
    "num_items,batch_size,replicas",
    [(15, 16, 2), (3, 2, 2), (5, 2, 2), (7, 2, 2), (1, 4, 2), (8, 2, 2), (10, 3, 3), (2, 1, 4)],
)
def test_padded_shares_are_equal_and_non_empty_and_gather_back_to_the_single_process_batches(
    num_items, batch_size, replicas
):
    shares = [
        list(
            EpochBatchSampler(
                num_items, batch_size, seed=1, drop_last=False, pad_shares=True, num_replicas=replicas, rank=rank
            )
        )
        for rank in range(replicas)
    ]
    single = list(EpochBatchSampler(num_items, batch_size * replicas, seed=1, drop_last=False))
    assert all(len(batches) == len(single) for batches in shares)  # every rank runs the same number of steps
    for step, expected in enumerate(single):
        per_rank = [batches[step] for batches in shares]
        assert per_rank[0] and len({len(share) for share in per_rank}) == 1  # what an all-gather needs
        gathered = [index for share in per_rank for index, _, valid in share if valid]
        assert gathered == [index for index, _ in expected]  # rank order, padding dropped: the global batch


def test_a_short_last_batch_is_split_evenly_and_padding_is_marked():
    def shares(rank):
        return list(EpochBatchSampler(5, 2, shuffle=False, drop_last=False, pad_shares=True, num_replicas=2, rank=rank))

    # Global batches [0 1 2 3] and [4]: the second leaves rank 1 nothing, so it gets a marked copy of item 4.
    assert shares(0) == [[(0, 0, True), (1, 0, True)], [(4, 0, True)]]
    assert shares(1) == [[(2, 0, True), (3, 0, True)], [(4, 0, False)]]
    # 7 items: [4 5 6] is split 2 + 1, rank 1's share completed by a copy of the batch's first item.
    last = [
        list(EpochBatchSampler(7, 2, shuffle=False, drop_last=False, pad_shares=True, num_replicas=2, rank=r))[-1]
        for r in (0, 1)
    ]
    assert last == [[(4, 0, True), (5, 0, True)], [(6, 0, True), (4, 0, False)]]


def test_padding_marks_reach_the_batch_through_the_dataset_and_collator(tiny_model_path):
    items = {(0, 0): {"query_id": "a"}, (1, 0): {"query_id": "b"}}
    dataset = PaddedShareDataset(items)
    assert dataset[(1, 0, False)] == {"query_id": "b", "valid": False}
    encoder = DualEncoder.from_pretrained(tiny_model_path, query_max_length=16, passage_max_length=16)
    batch = batch_of(encoder, batch_size=3)  # items without a "valid" field: training batches
    assert batch["valid"].tolist() == [True, True, True]
    raw = [{"query_id": "q", "query": "q", "passages": ["p", "r"], "labels": [1.0, 0.0], "valid": v} for v in (1, 0)]
    assert GroupCollator(encoder.tokenization)(raw)["valid"].tolist() == [True, False]


def test_padded_rows_and_their_passages_are_dropped_before_the_loss(tiny_model_path):
    encoder = DualEncoder.from_pretrained(tiny_model_path, query_max_length=16, passage_max_length=16).double()
    module = attached(RetrieverModule(encoder, InfoNCELoss()))
    full = batch_of(encoder, batch_size=4)
    padded = dict(full, valid=torch.tensor([True, False, True, True]))
    kept = batch_of(encoder, batch_size=4)
    rows, passages = [0, 2, 3], [0, 1, 2, 6, 7, 8, 9, 10, 11]  # group size 3
    kept["query"] = {k: v[rows] for k, v in kept["query"].items()}
    kept["passages"] = {k: v[passages] for k, v in kept["passages"].items()}
    kept.update(labels=kept["labels"][rows], passage_ids=kept["passage_ids"][passages], valid=kept["valid"][rows])
    with torch.no_grad():
        scores, labels, mask = module(padded)
        expected_scores, expected_labels, expected_mask = module(kept)
    assert scores.shape == (3, 9)
    torch.testing.assert_close(scores, expected_scores)
    assert torch.equal(labels, expected_labels) and torch.equal(mask, expected_mask)


class KeepValidationLoss(Callback):
    def __init__(self):
        self.values = []

    def on_validation_end(self, trainer, pl_module):
        self.values.append(float(trainer.callback_metrics["val/loss"]))


def test_a_last_batch_too_small_for_the_loss_is_left_out_with_a_warning(tmp_path, tiny_model_path):
    val_source = graded_source(tmp_path / "dev5", num_queries=5)  # batches of 4: the last holds 1 query
    overrides = [
        f"model.name_or_path={tiny_model_path}",
        "model.passage_max_length=32",
        "model.query_max_length=16",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=1",
        "module.lr=0.0",
        "logger=csv",
        "data.batch_size=4",
        "loss=wasserstein",
        "~benchmark",
        "~callbacks",
        f"data.val_sources=[{{name: dev5, corpus: {val_source['corpus']}, queries: {val_source['queries']}, "
        f"qrels: {val_source['qrels']}}}]",
    ]
    cfg = compose_train_config(tmp_path / "run", overrides)
    with pytest.warns(UserWarning, match=r"holds 1 queries.*devices=1 queries, but WassersteinLoss needs at least 2"):
        metrics = train(cfg)
    # val/loss is the first batch's loss alone, computed again here with the unchanged (lr 0) initial weights.
    encoder = instantiate(cfg.model)
    datamodule = instantiate(cfg.data, _partial_=True)(tokenization=encoder.tokenization)
    datamodule.setup("fit")
    module = attached(RetrieverModule(encoder, instantiate(cfg.loss)))
    module.eval()
    with torch.no_grad():
        expected = module.loss(*module(next(iter(datamodule.val_dataloader())))).item()
    assert metrics["val/loss"] == pytest.approx(expected, rel=1e-5)

"""GradCache's step equals the uncached step: same loss, same parameter gradients, for every loss."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from lightning import Trainer

from sycl.data.collator import GroupCollator
from sycl.models import DualEncoder
from sycl.models.tokenization import length_sorted_chunks
from sycl.training import GradCacheRetrieverModule, RetrieverModule
from tests.conftest import CONF_DIR, compose_train_config

LOSS_NAMES = sorted(path.stem for path in (Path(CONF_DIR) / "loss").glob("*.yaml"))


def batch_of(encoder: DualEncoder, batch_size: int = 6, group_size: int = 3) -> dict:
    """Graded groups in which query 0's last passage is also query 1's first (a duplicate in-batch negative)."""
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu"]
    items = []
    for i in range(batch_size):
        passages = [" ".join(words[: 2 + (i * group_size + j) % 9]) + f" {i} {j}" for j in range(group_size)]
        labels = [3.0] + [float((i + j) % 3) for j in range(1, group_size)]
        items.append(
            {"query_id": str(i), "query": " ".join(words[i % 5 : i % 5 + 3]), "passages": passages, "labels": labels}
        )
    items[0]["passages"][-1] = items[1]["passages"][0]
    return GroupCollator(encoder.tokenization)(items)


def attached(module):
    """A Trainer attached to the module, as in fit, so manual_backward works outside a training loop."""
    trainer = Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.strategy.connect(module)
    module.trainer = trainer
    return module


def gradients(module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_cached_step_equals_uncached_step_in_float64(name, tmp_path, tiny_model_path):
    loss = instantiate(compose_train_config(tmp_path, [f"loss={name}", "temperature=0.5"]).loss)
    encoder = DualEncoder.from_pretrained(tiny_model_path, query_max_length=16, passage_max_length=16).double()
    batch = batch_of(encoder)

    plain = attached(RetrieverModule(encoder, loss))
    scores, labels, column_mask = plain(batch)
    assert column_mask is not None and not column_mask.all()  # the batch repeats a passage: masking is compared too
    expected_loss = loss(scores, labels, column_mask)
    expected_loss.backward()
    expected = gradients(plain)
    plain.zero_grad()

    cached = attached(GradCacheRetrieverModule(encoder, loss, chunk_size=4))
    cached_loss = cached.cached_backward(batch)
    actual = gradients(cached)
    assert cached_loss.item() == pytest.approx(expected_loss.item(), rel=1e-12, abs=1e-12)
    assert actual.keys() == expected.keys() and len(actual) > 10
    for parameter, value in expected.items():
        torch.testing.assert_close(actual[parameter], value, rtol=1e-9, atol=1e-12, msg=parameter)


def test_chunks_are_sorted_by_length_and_cut_to_their_longest():
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 1, 1, 0]])
    inputs = {"input_ids": torch.arange(20).reshape(4, 5), "attention_mask": mask}
    chunks = length_sorted_chunks(inputs, chunk_size=2)
    assert [rows.tolist() for rows, _ in chunks] == [[1, 3], [0, 2]]
    assert [chunk["input_ids"].shape[1] for _, chunk in chunks] == [5, 2]


def test_gradcache_module_trains_through_the_composed_config(tmp_path, tiny_model_path):
    from sycl.training.run import train

    overrides = [
        f"model.name_or_path={tiny_model_path}",
        "model.passage_max_length=32",
        "trainer.max_steps=2",
        "trainer.max_epochs=1",
        "logger=csv",
        "data.batch_size=8",
        "module=gradcache",
        "module.chunk_size=4",
        "trainer.gradient_clip_val=null",
    ]
    metrics = train(compose_train_config(tmp_path, overrides))
    assert torch.isfinite(torch.tensor(metrics["train/loss"])) and (tmp_path / "model").is_dir()


def test_chunked_passage_encoding_gives_the_same_scores_and_gradients(tiny_model_path):
    encoder = DualEncoder.from_pretrained(tiny_model_path, query_max_length=16, passage_max_length=16).double()
    batch = batch_of(encoder)
    results = []
    for chunk_size in (None, 5):
        module = attached(
            RetrieverModule(
                encoder, instantiate({"_target_": "sycl.losses.InfoNCELoss"}), passage_chunk_size=chunk_size
            )
        )
        scores, labels, column_mask = module(batch)
        module.loss(scores, labels, column_mask).backward()
        results.append((scores.detach(), gradients(module)))
        module.zero_grad()
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-10, atol=1e-12)
    for name, value in results[0][1].items():
        torch.testing.assert_close(results[1][1][name], value, rtol=1e-9, atol=1e-12)


def test_compiled_towers_give_the_same_scores_gradients_and_parameter_names(tiny_model_path):
    graphs = []

    def recording_backend(graph_module, example_inputs):  # a torch.compile backend that runs the traced graph
        graphs.append(graph_module)
        return graph_module.forward

    results = []
    for compile_option in (False, {"backend": recording_backend}):
        torch.manual_seed(0)
        encoder = DualEncoder.from_pretrained(tiny_model_path, query_max_length=16, passage_max_length=16)
        module = attached(
            RetrieverModule(encoder, instantiate({"_target_": "sycl.losses.InfoNCELoss"}), compile=compile_option)
        )
        module.configure_model()
        module.eval()  # no dropout: both runs must see the same function
        scores, labels, column_mask = module(batch_of(encoder))
        module.loss(scores, labels, column_mask).backward()
        results.append((scores.detach(), gradients(module), list(module.state_dict())))
    assert graphs, "the compile backend never ran: the towers were not compiled"
    assert results[1][2] == results[0][2]  # checkpoints and exports keep their keys
    torch.testing.assert_close(results[1][0], results[0][0])
    for name, value in results[0][1].items():
        torch.testing.assert_close(results[1][1][name], value)

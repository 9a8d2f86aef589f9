"""A LoRA decoder embedder (conf/model/qwen2_lora.yaml on a tiny random decoder) through training: only adapters
train, GradCache and two gloo processes give the one-process step, resume ends with the uninterrupted adapters,
and the exports load in eval.py."""

import pytest
import torch
from hydra.utils import instantiate
from lightning import Callback
from safetensors.torch import load_file

from sycl.models import DualEncoder
from sycl.models.checkpoint import encoder_from_checkpoint
from sycl.training import GradCacheRetrieverModule, RetrieverModule
from sycl.training.run import train
from tests.conftest import compose_config, compose_train_config
from tests.decoder_fixtures import tiny_decoder_overrides
from tests.test_ddp import one_step
from tests.test_gradcache import attached, batch_of, gradients

QUICK = ["trainer.max_epochs=1", "logger=csv", "~benchmark"]
NO_VALIDATION = ["~callbacks.retrieval_validation", "~callbacks.best_checkpoint", "~callbacks.early_stopping"]


class CheckOptimizedParameters(Callback):
    """Fails the run unless the optimizer holds exactly the trainable parameters, and those are LoRA adapters."""

    def on_train_start(self, trainer, pl_module):
        optimized = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
        trainable = {name for name, p in pl_module.named_parameters() if p.requires_grad}
        assert optimized == {id(p) for name, p in pl_module.named_parameters() if name in trainable}
        assert trainable and all(".lora_A." in name or ".lora_B." in name for name in trainable), trainable


def test_a_lora_run_trains_only_the_adapters_and_exports_a_loadable_model(tmp_path, tiny_decoder_path):
    overrides = tiny_decoder_overrides(tiny_decoder_path) + QUICK + ["trainer.max_steps=2"]
    check = ["+callbacks.check._target_=tests.test_lora_training.CheckOptimizedParameters"]
    metrics = train(compose_train_config(tmp_path, overrides + check))
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))

    base = DualEncoder.from_pretrained(tiny_decoder_path).query_model.state_dict()
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    prefix = "encoder.query_model.base_model.model."
    frozen = {k[len(prefix) :].replace(".base_layer", ""): v for k, v in state.items() if "lora_" not in k}
    assert frozen.keys() == base.keys()
    assert all(torch.equal(frozen[name], value) for name, value in base.items())  # the base model never moved
    assert all(state[k].abs().sum() > 0 for k in state if ".lora_B." in k)  # B starts at zero: the adapters did

    # The export (merged, from the best checkpoint) and the last checkpoint rebuilt with its adapters agree.
    texts = ["how long to boil an egg", "a"]
    exported = DualEncoder.from_pretrained(str(tmp_path / "model")).eval()
    rebuilt = encoder_from_checkpoint(tmp_path / "checkpoints" / "last.ckpt").eval()
    with torch.no_grad():
        torch.testing.assert_close(
            exported.encode_queries(**exported.tokenization.queries(texts)),
            rebuilt.encode_queries(**rebuilt.tokenization.queries(texts)),
            atol=1e-5,
            rtol=1e-4,
        )
    # eval.py with the same model group evaluates the folder as exported, without fresh adapters.
    eval_cfg = compose_config("eval", tmp_path / "eval", ["model=qwen2_lora", f"model.name_or_path={tmp_path}/model"])
    evaluated = instantiate(eval_cfg.ranker)
    assert evaluated.adapter_descriptions() == [None] and evaluated.settings == exported.settings


def test_a_cached_lora_step_equals_the_uncached_step(tmp_path, tiny_decoder_path):
    # Right padding: a left-padded text cut to a shorter chunk starts at another position, and rotary embeddings,
    # relative in exact arithmetic, are computed in float32 by transformers, so the step would agree to 1e-7 only.
    overrides = tiny_decoder_overrides(tiny_decoder_path) + ["loss=wasserstein", "model.padding_side=right"]
    cfg = compose_train_config(tmp_path, overrides)
    torch.manual_seed(0)
    encoder = instantiate(cfg.model).double()
    with torch.no_grad():  # nonzero B, so both adapter matrices get gradients
        for name, parameter in encoder.named_parameters():
            if ".lora_B." in name:
                parameter.normal_(0.0, 0.2)
    loss = instantiate(cfg.loss)
    batch = batch_of(encoder)

    plain = attached(RetrieverModule(encoder, loss))
    expected_loss = loss(*plain(batch))
    expected_loss.backward()
    expected = gradients(plain)
    plain.zero_grad()
    cached = attached(GradCacheRetrieverModule(encoder, loss, chunk_size=4))
    assert cached.cached_backward(batch).item() == pytest.approx(expected_loss.item(), rel=1e-10)
    actual = gradients(cached)
    assert actual.keys() == expected.keys() and all(".lora_" in name for name in expected)
    for name, value in expected.items():
        torch.testing.assert_close(actual[name], value, rtol=1e-8, atol=1e-12, msg=name)


def test_gradcache_trains_a_lora_model_with_gradient_checkpointing(tmp_path, tiny_decoder_path):
    overrides = tiny_decoder_overrides(tiny_decoder_path) + QUICK + NO_VALIDATION
    gradcache = ["module=gradcache", "module.chunk_size=2", "trainer.gradient_clip_val=null", "data.batch_size=6"]
    metrics = train(compose_train_config(tmp_path, overrides + gradcache + ["trainer.max_steps=2"]))
    assert torch.isfinite(torch.tensor(metrics["train/loss"])) and (tmp_path / "model" / "model.safetensors").is_file()


def test_a_resumed_lora_run_ends_with_the_adapters_of_an_uninterrupted_one(tmp_path, tiny_decoder_path):
    overrides = tiny_decoder_overrides(tiny_decoder_path) + QUICK + NO_VALIDATION
    overrides += ["trainer.max_steps=4", "callbacks.model_checkpoint.every_n_train_steps=2"]
    overrides += ["callbacks.export_encoder.merge_lora=false"]  # the adapter alone, compared tensor by tensor
    train(compose_train_config(tmp_path / "straight", overrides))
    stop = ["+callbacks.stop_after._target_=tests.test_train.StopAfter", "+callbacks.stop_after.steps=2"]
    train(compose_train_config(tmp_path / "stopped", overrides + stop))
    checkpoint = tmp_path / "stopped" / "checkpoints" / "last.ckpt"
    train(compose_train_config(tmp_path / "resumed", overrides + [f"ckpt_path={checkpoint}"]))

    straight, resumed = (
        load_file(tmp_path / run / "model" / "adapter_model.safetensors") for run in ("straight", "resumed")
    )
    assert straight.keys() == resumed.keys() and straight
    for name, value in straight.items():
        torch.testing.assert_close(resumed[name], value, msg=f"{name} differs after resuming")
    # eval.py loads the adapter folder onto its base model; the group's fresh adapters are not added, even when the
    # group's settings are applied to the folder.
    for settings_from_folder in (True, False):
        overrides = ["model=qwen2_lora", f"model.name_or_path={tmp_path}/straight/model"]
        overrides += [f"ranker.settings_from_folder={settings_from_folder}"]
        evaluated = instantiate(compose_config("eval", tmp_path / "eval", overrides).ranker)
        assert evaluated.adapter_descriptions()[0]["r"] == 4
        adapter_weights = {k: v for k, v in evaluated.state_dict().items() if ".lora_B." in k}
        assert adapter_weights and all(v.abs().sum() > 0 for v in adapter_weights.values())


@pytest.mark.slow
def test_two_gloo_processes_train_a_lora_model_as_one_process(tmp_path, tiny_decoder_path):
    lora = tuple(o for o in tiny_decoder_overrides(tiny_decoder_path) if not o.startswith("data.batch_size"))
    single = torch.load(
        one_step(tmp_path, tiny_decoder_path, 1, batch_size=8, loss="wasserstein", extra=lora) / "rank0.pt"
    )
    double = one_step(tmp_path, tiny_decoder_path, devices=2, batch_size=4, loss="wasserstein", extra=lora)
    assert single["gradients"] and all(".lora_" in name for name in single["gradients"])
    for rank in (0, 1):
        distributed = torch.load(double / f"rank{rank}.pt")
        assert distributed["loss"] == pytest.approx(single["loss"], rel=1e-5)
        for name, gradient in single["gradients"].items():
            torch.testing.assert_close(distributed["gradients"][name], gradient, rtol=1e-4, atol=1e-6, msg=name)

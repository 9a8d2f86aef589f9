"""Decoder embedders: EOS-closed last-token pooling under either padding, LoRA exports that every loader reads as
the in-memory model, gradient checkpointing that changes no gradient, cache keys that see the adapters."""

import json

import pytest
import torch
from hydra.utils import instantiate
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer
from transformers import AutoTokenizer

from sycl.evaluation.cache import model_fingerprint
from sycl.evaluation.encoding import encode_texts
from sycl.models import DualEncoder, pool
from sycl.models.tokenization import length_sorted_chunks
from tests.conftest import compose_config
from tests.decoder_fixtures import EOS
from tests.test_export_loaders import PASSAGES, QUERIES, assert_same_embeddings, plain_transformers_embeddings

INSTRUCTION = "Instruct: Given a question, retrieve passages that answer it\nQuery: "
LORA = {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"], "modules_to_save": ["norm"]}


def decoder(path: str, **options) -> DualEncoder:
    """The tiny decoder as an EOS-closed, last-token-pooled embedder with short limits (the long texts are cut)."""
    settings = dict(pooling="last", normalize=False, append_eos=True, query_max_length=12, passage_max_length=16)
    return DualEncoder.from_pretrained(path, **{**settings, **options})


def randomize_adapters(encoder: DualEncoder, seed: int = 0) -> None:
    """LoRA's B matrices start at zero (the adapters change nothing): give every trainable tensor random values."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in encoder.parameters():
            if parameter.requires_grad:
                parameter.add_(0.2 * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))


@pytest.mark.parametrize("side", ["left", "right"])
def test_last_token_pooling_reads_the_appended_eos_under_either_padding(tiny_decoder_path, side):
    encoder = decoder(tiny_decoder_path, padding_side=side)
    texts = ["egg", "how many minutes should a large hen egg boil", "a"]
    batch = encoder.tokenization.queries(texts)
    mask, ids = batch["attention_mask"], batch["input_ids"]
    assert mask.shape[1] == 12 and mask.sum(1).min() < 12  # the long text is cut, the others padded
    assert bool(mask[:, 0].all()) == (side == "right")  # padded on the side asked for
    # Pooling the token ids themselves shows which position "last" reads: the EOS, the cut text's included.
    pooled_ids = pool(ids.unsqueeze(-1).float(), mask, "last").squeeze(-1).long()
    assert pooled_ids.tolist() == [encoder.tokenization.tokenizer.eos_token_id] * len(texts)
    # Length-sorted chunks (GradCache, chunked passages) keep the real tokens on either side.
    for rows, chunk in length_sorted_chunks(batch, chunk_size=2):
        assert torch.equal(chunk["attention_mask"].sum(1), mask[rows].sum(1))


def test_left_and_right_padding_give_the_same_embeddings(tiny_decoder_path):
    """Rotary positions are relative, so shifting a left-padded text's positions changes nothing."""
    left, right = (decoder(tiny_decoder_path, padding_side=side).eval() for side in ("left", "right"))
    texts = ["egg", "how many minutes should a large hen egg boil", "a"]
    with torch.no_grad():
        embeddings = [e.encode_queries(**e.tokenization.queries(texts)) for e in (left, right)]
    torch.testing.assert_close(embeddings[0], embeddings[1], atol=1e-5, rtol=1e-4)


def test_without_append_eos_the_decoder_tokenizer_adds_nothing(tiny_decoder_path):
    plain = DualEncoder.from_pretrained(tiny_decoder_path).tokenization.tokenizer
    assert plain("egg")["input_ids"][-1] != plain.eos_token_id
    assert plain.pad_token == EOS


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "separate-towers"])
def test_merged_and_adapter_exports_give_the_in_memory_embeddings(tmp_path, tiny_decoder_path, shared):
    encoder = decoder(
        tiny_decoder_path,
        normalize=True,
        padding_side="left",
        query_prefix=INSTRUCTION,
        passage_prefix="passage: ",
        shared=shared,
        lora=LORA,
    )
    randomize_adapters(encoder)
    ours = {
        kind: encode_texts(encoder, texts, kind, device="cpu", progress=False)
        for kind, texts in (("query", QUERIES), ("passage", PASSAGES))
    }
    if not shared:  # the towers got different adapters, so a loader that swaps them is caught
        assert not torch.allclose(encoder.encode_queries(**encoder.tokenization.passages(PASSAGES)), ours["passage"])
    for merge_lora in (True, False):
        folder = tmp_path / ("merged" if merge_lora else "adapter")
        encoder.save_pretrained(folder, merge_lora=merge_lora)
        assert (folder / "adapter_config.json").is_file() != merge_lora
        assert (folder / "model.safetensors").is_file() == merge_lora
        tokenizer = AutoTokenizer.from_pretrained(folder)  # the saved tokenizer closes texts with EOS, on the left
        assert tokenizer("egg")["input_ids"][-1] == tokenizer.eos_token_id and tokenizer.padding_side == "left"

        reloaded = DualEncoder.from_pretrained(str(folder))
        assert reloaded.settings == encoder.settings
        for kind, texts in (("query", QUERIES), ("passage", PASSAGES)):
            label = f"{folder.name} {kind}"
            mine = encode_texts(reloaded, texts, kind, device="cpu", progress=False)
            assert_same_embeddings(mine, ours[kind], f"DualEncoder.from_pretrained {label}")
            assert_same_embeddings(plain_transformers_embeddings(folder, texts, kind), ours[kind], f"AutoModel {label}")
        if not (shared or merge_lora):
            continue  # SentenceTransformer's Router cannot load adapter towers (DualEncoder.save_pretrained)
        st_model = SentenceTransformer(str(folder), device="cpu")
        assert_same_embeddings(st_model.encode_query(QUERIES, convert_to_tensor=True), ours["query"], "encode_query")
        assert_same_embeddings(
            st_model.encode_document(PASSAGES, convert_to_tensor=True), ours["passage"], "encode_document"
        )


def test_an_adapter_export_holds_the_adapters_and_points_to_its_base(tmp_path, tiny_decoder_path):
    encoder = decoder(tiny_decoder_path, lora=LORA)
    encoder.save_pretrained(tmp_path / "adapter", merge_lora=False)
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == tiny_decoder_path
    saved = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    # Adapters and modules_to_save only (peft matches "norm" as a name suffix: every layer's norms too).
    assert saved and all("lora_" in name or "norm" in name for name in saved)
    assert sum(t.numel() for t in saved.values()) < 0.1 * sum(p.numel() for p in encoder.parameters())

    with pytest.raises(ValueError, match="carries its own LoRA config"):
        DualEncoder.from_pretrained(str(tmp_path / "adapter"), lora=LORA)
    config["base_model_name_or_path"] = str(tmp_path / "moved")
    (tmp_path / "adapter" / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(OSError, match="base model of the adapter"):
        DualEncoder.from_pretrained(str(tmp_path / "adapter"))


@pytest.mark.parametrize("lora", [None, LORA], ids=["full", "lora"])
def test_gradient_checkpointing_gives_the_same_gradients(tiny_decoder_path, lora):
    results = []
    for checkpointing in (False, True):
        torch.manual_seed(0)  # the same initial adapters (peft draws A at random)
        encoder = decoder(tiny_decoder_path, lora=lora, gradient_checkpointing=checkpointing).double().train()
        randomize_adapters(encoder)  # LoRA: nonzero B, so A gets gradients too
        layer = encoder.query_model.get_base_model().layers[0] if lora else encoder.query_model.layers[0]
        calls = []  # inside the checkpointed layer's forward: a recomputation calls it again
        layer.self_attn.register_forward_hook(lambda *args, calls=calls: calls.append(1))
        queries = encoder.encode_queries(**encoder.tokenization.queries(QUERIES))
        passages = encoder.encode_passages(**encoder.tokenization.passages(PASSAGES))
        torch.log_softmax(queries @ passages.T, dim=1).diagonal().sum().backward()
        assert len(calls) == (4 if checkpointing else 2)  # a checkpointed layer runs again in the backward
        gradients = {n: p.grad for n, p in encoder.named_parameters() if p.grad is not None}
        results.append(gradients)
    assert results[1].keys() == results[0].keys() and results[0]
    for name, value in results[0].items():
        torch.testing.assert_close(results[1][name], value, rtol=1e-10, atol=1e-12, msg=name)


def test_bf16_weights_give_float32_embeddings_and_fp32_adapters(tiny_decoder_path):
    encoder = decoder(tiny_decoder_path, dtype="bfloat16", lora=LORA)
    assert encoder.query_model.get_base_model().embed_tokens.weight.dtype == torch.bfloat16
    # peft keeps adapters in float32; modules_to_save are copies of base modules, in the base dtype.
    adapters = {p.dtype for n, p in encoder.named_parameters() if "lora_" in n}
    assert adapters == {torch.float32}
    embeddings = encoder.encode_queries(**encoder.tokenization.queries(QUERIES))
    assert embeddings.dtype == torch.float32 and torch.isfinite(embeddings).all()
    with pytest.raises(ValueError, match="model.dtype='half'"):
        decoder(tiny_decoder_path, dtype="half")


def test_the_cache_key_covers_adapter_weights_and_scaling(tiny_decoder_path):
    encoder = decoder(tiny_decoder_path, lora=LORA)
    before = model_fingerprint(encoder)
    randomize_adapters(encoder)
    assert model_fingerprint(encoder) != before
    scaled = []
    for alpha in (8, 16):  # the same weights, the second adapter's update twice the first's
        torch.manual_seed(0)
        scaled.append(decoder(tiny_decoder_path, lora={**LORA, "lora_alpha": alpha}))
    weights = [e.state_dict() for e in scaled]
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])
    assert model_fingerprint(scaled[0]) != model_fingerprint(scaled[1])
    assert model_fingerprint(decoder(tiny_decoder_path, padding_side="left")) != model_fingerprint(
        decoder(tiny_decoder_path)
    )


def test_eval_loads_a_plain_peft_adapter_folder_with_its_own_adapters(tmp_path, tiny_decoder_path):
    """An adapter saved by peft itself (no sycl_encoder.json) under the qwen2_lora group: the group's fresh adapters
    are not stacked on it, whatever ``settings_from_folder`` says."""
    encoder = decoder(tiny_decoder_path, lora=LORA)
    randomize_adapters(encoder)
    encoder.query_model.save_pretrained(tmp_path / "peft")  # what peft writes: adapter_config.json + weights
    encoder.tokenization.tokenizer.save_pretrained(tmp_path / "peft")
    overrides = ["model=qwen2_lora", f"model.name_or_path={tmp_path / 'peft'}", "model.dtype=float32"]
    overrides += ["model.query_max_length=12", "model.passage_max_length=16", "model.normalize=false"]
    for settings_from_folder in (True, False):
        cfg = compose_config(
            "eval", tmp_path / "eval", [*overrides, f"ranker.settings_from_folder={settings_from_folder}"]
        )
        loaded = instantiate(cfg.ranker)
        assert [d["r"] for d in loaded.adapter_descriptions() if d] == [LORA["r"]]
        with torch.no_grad():
            theirs = loaded.encode_passages(**loaded.tokenization.passages(PASSAGES))
            ours = encoder.encode_passages(**encoder.tokenization.passages(PASSAGES))
        assert_same_embeddings(theirs, ours, f"eval.py, settings_from_folder={settings_from_folder}")


def test_eval_loads_the_lora_groups_base_model_without_fresh_adapters_or_checkpointing(tmp_path, tiny_decoder_path):
    """Fresh adapters change no embedding; evaluation leaves them (and checkpointing) out, so the base row costs no
    more than the plain model and shares its cache key with train.py's base row."""
    overrides = ["model=qwen2_lora", f"model.name_or_path={tiny_decoder_path}", "model.dtype=float32"]
    evaluated = instantiate(compose_config("eval", tmp_path / "eval", overrides).ranker)
    assert evaluated.adapter_descriptions() == [None]
    assert not evaluated.query_model.is_activation_checkpointing
    trained_group = decoder(tiny_decoder_path, lora=LORA, gradient_checkpointing=True)
    assert trained_group.adapter_descriptions() != [None] and trained_group.query_model.is_activation_checkpointing

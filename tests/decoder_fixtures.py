"""A tiny decoder-only model (Qwen2 architecture, random weights) and its byte-level BPE tokenizer, built offline.

conftest.py imports the fixture, so every test module can ask for ``tiny_decoder_path``.
"""

import json

import pytest

from sycl.config import repo_root

EOS = "<|endoftext|>"


def build_tiny_decoder(path, vocab_size: int = 512) -> None:
    """Save to ``path`` a 2-layer, 32-wide Qwen2 model and a BPE tokenizer trained on the demo corpus.

    The tokenizer is built like Qwen2's: byte-level, no BOS, no EOS appended, ``<|endoftext|>`` as EOS and pad
    token, right padding. Dropout is off (Qwen2 has none), so runs are exactly reproducible.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2Model

    with open(f"{repo_root()}/data/demo/synthetic/corpus.jsonl", encoding="utf-8") as corpus:
        texts = [json.loads(line)["text"] for line in corpus]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=EOS, pad_token=EOS).save_pretrained(path)

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=64,
        max_position_embeddings=512,
        tie_word_embeddings=False,
    )
    Qwen2Model(config).save_pretrained(path)


@pytest.fixture(scope="session")
def tiny_decoder_path(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("tiny_decoder")
    build_tiny_decoder(path)
    return str(path)


def tiny_decoder_overrides(tiny_decoder_path: str) -> list[str]:
    """conf/model/qwen2_lora.yaml on the tiny decoder, in float32 (exact comparisons), short texts, batches of 4."""
    return [
        "model=qwen2_lora",
        f"model.name_or_path={tiny_decoder_path}",
        "model.dtype=float32",
        # The instruction alone is about 40 tokens of this small vocabulary.
        "model.query_max_length=64",
        "model.passage_max_length=32",
        "model.lora.r=4",
        "model.lora.lora_dropout=0.0",
        "data.batch_size=4",
    ]

"""generator=hf: local transformers generation on a tiny randomly initialised causal LM built in the test.

Its answers are gibberish, so every query must fail, and the accounting must say exactly how: the
number of requests, batches, answers asked again, and tokens.
"""

import asyncio
import json

import pytest
import torch
from hydra.utils import instantiate
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from sycl.generation import generate
from sycl.generation.errors import GenerationError
from sycl.generation.hf_chat import HFChat
from sycl.generation.parsing import AnswerParser
from tests.fake_openai_server import json_answer
from tests.test_generation import compose_generate, write_queries

CHAT_TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant> {% endif %}"
)
NEW_TOKENS = 12


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory, minilm_path) -> str:
    """A 1-layer, 32-wide Llama with random weights, MiniLM's tokenizer and a chat template; no end token."""
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        eos_token_id=None,
    )
    path = tmp_path_factory.mktemp("tiny_llama")
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_hf_backend_batches_and_accounts_for_gibberish_answers(tmp_path, tiny_llm):
    queries = write_queries(tmp_path / "queries.jsonl", 3)
    cfg = compose_generate(
        [
            f"queries={tmp_path / 'queries.jsonl'}",
            f"output_dir={tmp_path / 'out'}",
            "generator=hf",
            f"generator.model={tiny_llm}",
            "generator.batch_size=4",
            "generator.device=cpu",
            f"generator.sampling.max_new_tokens={NEW_TOKENS}",
            "max_attempts=2",
            "progress=false",
        ]
    )
    with pytest.raises(GenerationError, match="no query was completed.*truncated 3"):
        generate(cfg)  # with nothing complete there is no dataset to write, but the report says why

    out = tmp_path / "out"
    report = json.loads((out / "report.json").read_text())
    assert report["queries"]["failed"] == 3 and report["queries"]["written"] == 0
    # Without an end token every answer runs to max_new_tokens, so each is rejected as cut off.
    assert report["failure_reasons"] == {"truncated": 3}
    assert report["requests"]["sent"] == 6 and report["requests"]["answer_retries"] == 3
    assert report["requests"]["backend_calls"] == 2  # three queries in one batch, then their three retries
    assert report["tokens"]["completion"] == 6 * NEW_TOKENS
    tokenizer, prompt = AutoTokenizer.from_pretrained(tiny_llm), instantiate(cfg.prompts)
    rendered = [
        tokenizer.apply_chat_template(prompt.messages(text, (3, 2, 1, 0)), add_generation_prompt=True, tokenize=False)
        for text in queries.values()
    ]
    assert report["tokens"]["prompt"] == 2 * sum(
        len(tokenizer(r, add_special_tokens=False).input_ids) for r in rendered
    )
    assert not (out / "corpus.jsonl").exists() and not (out / "qrels").exists()
    assert report["failed"]["q0"]["reason"] == "truncated"


def test_hf_backend_decodes_only_the_new_tokens_and_stops_at_the_end_token(tiny_llm):
    chat = HFChat(tiny_llm, device="cpu", sampling={"max_new_tokens": NEW_TOKENS, "do_sample": False})
    messages = [{"role": "user", "content": "how long do tortoises live"}]
    inputs = chat.tokenizer(
        [chat.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)],
        return_tensors="pt",
        add_special_tokens=False,
        return_token_type_ids=False,
    )
    greedy = chat.lm.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=0)
    new_ids = greedy[0, inputs.input_ids.shape[1] :].tolist()

    (answer,) = asyncio.run(chat.complete([messages]))
    assert answer.text == chat.tokenizer.decode(new_ids, skip_special_tokens=True)  # the prompt is not echoed
    assert (answer.finish_reason, answer.completion_tokens) == ("length", NEW_TOKENS)
    assert answer.prompt_tokens == inputs.input_ids.shape[1]

    # Make a token that greedy decoding picks the end token: generation stops there, the answer ends before it.
    stop = next(i for i, token in enumerate(new_ids) if i > 0 and token not in new_ids[:i])
    chat.eos_ids = {new_ids[stop]}
    (stopped,) = asyncio.run(chat.complete([messages]))
    assert (stopped.finish_reason, stopped.completion_tokens) == ("stop", stop + 1)
    assert stopped.text == chat.tokenizer.decode(new_ids[:stop], skip_special_tokens=True)

    # In a batch, the shorter prompt is left-padded and its padding is not counted as prompt tokens.
    longer = [{"role": "user", "content": "a much longer question about tortoises " * 3}]
    short, long = asyncio.run(chat.complete([messages, longer]))
    assert short.prompt_tokens == inputs.input_ids.shape[1] < long.prompt_tokens


def test_a_model_without_chat_template_is_refused(tmp_path, tiny_llm):
    tokenizer = AutoTokenizer.from_pretrained(tiny_llm)
    tokenizer.chat_template = None
    LlamaForCausalLM.from_pretrained(tiny_llm).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    (tmp_path / "chat_template.jinja").unlink(missing_ok=True)
    with pytest.raises(ValueError, match="has no chat template"):
        HFChat(str(tmp_path), device="cpu")


def test_hf_backend_keeps_the_reasoning_tags_so_the_draft_in_them_is_not_parsed(tiny_llm, monkeypatch):
    """Reasoning models (Qwen3, QwQ, DeepSeek-R1 distills) have <think> and </think> as added, non-special
    tokens: decoding keeps them, and the parser takes the answer after the block."""
    chat = HFChat(tiny_llm, device="cpu", sampling={"max_new_tokens": 400})
    chat.tokenizer.add_tokens(["<think>", "</think>"])
    query = "how long do tortoises live"
    draft, final = json_answer(query, variant=1), json_answer(query, variant=2)
    end = chat.tokenizer.sep_token_id
    chat.eos_ids = {end}
    answer_ids = chat.tokenizer(f"<think> {draft} </think> {final}", add_special_tokens=False).input_ids + [end]

    def generate(input_ids, **kwargs):
        return torch.cat([input_ids, torch.tensor([answer_ids] * input_ids.shape[0])], dim=1)

    monkeypatch.setattr(chat.lm, "generate", generate)
    (completion,) = asyncio.run(chat.complete([[{"role": "user", "content": query}]]))
    assert "<think>" in completion.text and "</think>" in completion.text
    passages = AnswerParser().parse(completion.text, (3, 2, 1, 0), query, True, completion.finish_reason)
    assert passages == {int(k): v.lower() for k, v in json.loads(final).items()}  # MiniLM's vocabulary is uncased

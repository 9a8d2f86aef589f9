"""Answers of reasoning models: the final answer is parsed, never a draft written inside the reasoning block.

Reasoning models served without a reasoning parser put their thinking in the content, often with a
complete draft answer in it; some chat templates open the block in the prompt, so only ``</think>``
shows. A server with a reasoning parser returns the thinking as ``reasoning_content``, which is not read.
"""

import json

import pytest

from sycl.data.beir_files import read_corpus
from sycl.generation.parsing import AnswerParser, BadAnswer
from tests.fake_openai_server import FakeOpenAIServer, Reply, json_answer, passage
from tests.test_generation import overrides, run_generate, write_queries

QUERY = "how long do tortoises live"
LEVELS = (3, 2, 1, 0)
DRAFT, FINAL = json_answer(QUERY, variant=1), json_answer(QUERY, variant=2)


def parse(answer: str, answers_json: bool = True, levels=LEVELS, finish_reason: str = "stop") -> dict[int, str]:
    return AnswerParser().parse(answer, levels, QUERY, answers_json, finish_reason)


@pytest.mark.parametrize(
    "answer",
    [
        f"<think>\nFirst attempt:\n{DRAFT}\nLevel 2 is too close to level 3.\n</think>\n{FINAL}",
        f"<thinking>{DRAFT}</thinking>\n```json\n{FINAL}\n```",
        f"<reasoning>{DRAFT}</reasoning>{FINAL}",
        f"<THINK>{DRAFT}</THINK>{FINAL}",
        f"<think>{DRAFT}</think><think>again: {DRAFT}</think>{FINAL}",
        f"The template opened the block in the prompt: {DRAFT}\n</think>\n\n{FINAL}",
    ],
    ids=["think", "thinking-fenced", "reasoning", "upper-case", "two-blocks", "closing-tag-only"],
)
def test_the_final_json_answer_is_parsed_not_the_draft_in_the_reasoning(answer):
    assert parse(answer) == {int(k): v for k, v in json.loads(FINAL).items()}


def test_a_per_level_plain_answer_drops_its_reasoning_too():
    draft, final = passage(QUERY, 3, variant=1), passage(QUERY, 3, variant=2)
    assert parse(f"<think>Maybe: {draft}</think>\nPassage: {final}", answers_json=False, levels=(3,)) == {3: final}
    assert parse(f"Maybe: {draft}</think>{final}", answers_json=False, levels=(3,)) == {3: final}


@pytest.mark.parametrize("answers_json", [True, False])
def test_reasoning_that_never_closes_is_rejected_with_the_reason(answers_json):
    with pytest.raises(BadAnswer, match="<think> block that never closes") as rejected:
        parse(f"<think>\nFirst attempt:\n{DRAFT}\nHmm, let me", answers_json=answers_json)
    assert rejected.value.kind == "unfinished_reasoning"
    with pytest.raises(BadAnswer) as cut_off:  # run out of tokens while thinking: ask for more tokens
        parse(f"<think>{DRAFT}", finish_reason="length")
    assert cut_off.value.kind == "truncated"


def test_generate_writes_the_final_passages_of_reasoning_answers(tmp_path):
    """Through generate.py and a real HTTP server: a think block in the content, and reasoning_content apart."""
    queries = write_queries(tmp_path / "queries.jsonl", 4)

    def answer(call):
        draft, final = json_answer(call.query, variant=1), json_answer(call.query, variant=2)
        if call.query == queries["q0"]:
            return Reply(content=f"<think>\n{draft}\n</think>\n{final}")
        if call.query == queries["q1"]:
            return Reply(content=f"{draft}\n</think>\n{final}")
        if call.query == queries["q2"]:  # vLLM with a reasoning parser: the thinking is its own field
            message = {"role": "assistant", "reasoning_content": f"draft: {draft}", "content": final}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            return Reply(body=json.dumps({"choices": [choice], "usage": {}}))
        if call.attempt == 1:  # ran out of things to say inside the block: asked again
            return Reply(content=f"<think>\n{draft}\n")
        return Reply(content=final)

    with FakeOpenAIServer(answer) as server:
        report = run_generate(overrides(server.url, tmp_path / "queries.jsonl", tmp_path / "out"))

    corpus = read_corpus(tmp_path / "out" / "corpus.jsonl")
    expected = {f"{q}-L{level}-s0": passage(text, level, variant=2) for q, text in queries.items() for level in LEVELS}
    assert corpus == expected
    assert report["queries"]["complete"] == 4 and report["queries"]["failed"] == 0
    assert report["requests"]["rejected_answers"] == {"unfinished_reasoning": 1}

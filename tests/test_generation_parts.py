"""The parts of generation on their own: answer parsing, prompts, the journal, work planning, the BEIR writer."""

import asyncio
import json
import os

import httpx
import pytest

from sycl.data import DataFormatError
from sycl.data.beir_files import read_corpus, read_qrels, read_queries
from sycl.generation import GenerationError
from sycl.generation.chat import ServerError
from sycl.generation.consistency import level_agreement
from sycl.generation.estimate import estimate
from sycl.generation.journal import Journal
from sycl.generation.openai_chat import OpenAIChat
from sycl.generation.parsing import AnswerParser, BadAnswer
from sycl.generation.prompts import LEVELS, PromptTemplate
from sycl.generation.work import JournalPassage, filled_slots, is_complete, iter_journal_passages, pending_units
from sycl.generation.writer import write_beir
from tests.fake_openai_server import passage

QUERY = "how long do tortoises live"
GOOD = {str(level): passage(QUERY, level) for level in LEVELS}


def parse(answer: str, levels=LEVELS, answers_json=True, finish_reason="stop", **limits):
    return AnswerParser(**limits).parse(answer, levels, QUERY, answers_json, finish_reason)


@pytest.mark.parametrize(
    "answer",
    [
        json.dumps(GOOD),
        "```json\n" + json.dumps(GOOD, indent=2) + "\n```",
        "Sure! Here are the passages:\n" + json.dumps(GOOD) + "\nLet me know if you need more.",
        json.dumps({f"level {k}": v for k, v in GOOD.items()}),
        json.dumps({"passages": GOOD}),
        "{not json} then " + json.dumps(GOOD),
    ],
    ids=["plain", "fenced", "prose-around", "level-keys", "nested", "brace-before"],
)
def test_parser_tolerates_fences_prose_and_key_variants(answer):
    assert parse(answer) == {int(k): v for k, v in GOOD.items()}


@pytest.mark.parametrize(
    ("answer", "kind", "message"),
    [
        ("I cannot help with that.", "no_json", "no JSON object"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "1"}), "missing_levels", "levels 1 missing"),
        (json.dumps({**GOOD, "2": "   "}), "empty", "level 2 is empty"),
        (json.dumps({**GOOD, "0": QUERY.upper() + "?"}), "copies_query", "level 0 copies the query"),
        (json.dumps({**GOOD, "0": QUERY + " and why"}), "copies_query", "level 0 copies the query"),
        (json.dumps({**GOOD, "3": "Tortoises live long."}), "too_short", "level 3 has 3 words"),
        (json.dumps({**GOOD, "1": "word " * 251}), "too_long", "level 1 has 251 words"),
        (json.dumps({**GOOD, "1": GOOD["2"].lower()}), "duplicate_levels", "levels 2 and 1 are the same"),
        (json.dumps({**GOOD, "3": ["a list"]}), "not_text", "level 3 is a list"),
    ],
)
def test_parser_rejects_unusable_answers(answer, kind, message):
    with pytest.raises(BadAnswer, match=message) as rejected:
        parse(answer)
    assert rejected.value.kind == kind


def test_parser_rejects_an_answer_cut_off_at_the_token_limit():
    with pytest.raises(BadAnswer, match="cut off") as rejected:
        parse(json.dumps(GOOD), finish_reason="length")
    assert rejected.value.kind == "truncated"


def test_a_passage_may_open_with_the_query_when_it_goes_on():
    answer = {**GOOD, "3": QUERY + "? " + GOOD["3"]}
    assert parse(json.dumps(answer))[3].startswith(QUERY)


def test_per_level_answers_are_plain_text_with_wrappers_removed():
    text = GOOD["2"]
    for answer in (text, f'"{text}"', f"```\n{text}\n```", f"Passage: {text}", f"Level 2 passage: {text}"):
        assert parse(answer, levels=(2,), answers_json=False) == {2: text}
    with pytest.raises(BadAnswer, match="level 1 copies the query"):
        parse(QUERY, levels=(1,), answers_json=False)


def test_prompt_placeholder_typo_fails_at_start_naming_the_field():
    levels = {str(level): f"definition {level}" for level in LEVELS}
    with pytest.raises(ValueError, match=r"prompts\.user: bad placeholder 'qeury'"):
        PromptTemplate(mode="all_levels", system="", user="Query: $qeury", levels=levels)
    with pytest.raises(ValueError, match=r"prompts\.levels must define exactly"):
        PromptTemplate(mode="all_levels", system="", user="$query", levels={"3": "x"})
    prompt = PromptTemplate(mode="per_level", system="", user="$query|$level|$definition|costs $$5", levels=levels)
    assert prompt.messages(" q ", (1,)) == [{"role": "user", "content": "q|1|definition 1|costs $5"}]


def record(query_id: str, query: str, sample: int, passages: dict) -> dict:
    return {"query_id": query_id, "query": query, "sample": sample, "passages": passages, "attempts": 1}


def test_journal_cuts_a_torn_last_line_and_keeps_every_complete_record(tmp_path):
    path = tmp_path / "journal.jsonl"
    with Journal(path, {"model": "m"}) as journal:
        journal.append(record("q1", "a", 0, {"3": "x"}))
        journal.append(record("q2", "b", 0, {"3": "y"}))
    with path.open("ab") as handle:  # what a kill in the middle of a long write leaves behind
        handle.write(b'{"query_id": "q3", "query": "c", "sample": 0, "passages": {"3": "z')
    with Journal(path, {"model": "m"}) as journal:
        assert [r["query_id"] for r in journal.iter_records()] == ["q1", "q2"]
        journal.append(record("q3", "c", 0, {"3": "z"}))
        assert [r["query_id"] for r in journal.iter_records()] == ["q1", "q2", "q3"]
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_a_failed_run_that_journaled_nothing_leaves_neither_the_journal_nor_the_folders_made_for_it(tmp_path):
    (tmp_path / "existing").mkdir()
    path = tmp_path / "existing" / "out" / "deeper" / "journal.jsonl"
    with pytest.raises(RuntimeError), Journal(path, {"model": "m"}):
        raise RuntimeError("no server")
    assert list(tmp_path.iterdir()) == [tmp_path / "existing"] and not list((tmp_path / "existing").iterdir())
    with pytest.raises(RuntimeError), Journal(path, {"model": "m"}):
        (path.parent / "notes.txt").write_text("written by someone else meanwhile\n")
        raise RuntimeError("no server")
    assert not path.exists() and (path.parent / "notes.txt").is_file()


def test_journal_refuses_another_setup_and_a_second_writer(tmp_path):
    path = tmp_path / "journal.jsonl"
    fingerprint = {"model": "m", "prompts": {"mode": "all_levels"}}
    with Journal(path, fingerprint), pytest.raises(GenerationError, match="another generate.py run"):
        Journal(path, fingerprint).__enter__()
    with pytest.raises(GenerationError, match="different model:"):
        Journal(path, {**fingerprint, "model": "other"}).__enter__()
    path.write_text('{"format": "something else"}\n')
    with pytest.raises(DataFormatError, match=r"journal\.jsonl, line 1, field 'format'"):
        Journal(path, fingerprint).__enter__()


def test_pending_work_skips_filled_slots_and_edited_queries():
    queries = {"q1": "first", "q2": "second", "q3": "third, edited"}
    records = [
        record("q1", "first", 0, {str(level): f"q1 {level}" for level in LEVELS}),
        record("q2", "second", 0, {"3": "q2 3", "2": "q2 2"}),
        record("q3", "third", 0, {str(level): f"q3 {level}" for level in LEVELS}),  # the query changed since
        record("q1", "first", 0, {"3": "a later duplicate"}),
    ]
    passages = list(iter_journal_passages(records, queries))
    assert [p.text for p in passages if p.query_id == "q1" and p.level == 3] == ["q1 3"]
    slots = filled_slots(passages)
    assert is_complete(slots["q1"], 1) and not is_complete(slots["q1"], 2)
    units = pending_units(queries, slots, samples_per_level=1, per_level=True)
    assert [(u.query_id, u.levels) for u in units] == [("q2", (1,)), ("q2", (0,))] + [("q3", (lv,)) for lv in LEVELS]
    units = pending_units(queries, slots, samples_per_level=2, per_level=False)
    assert [(u.query_id, u.sample) for u in units] == [("q1", 1), ("q2", 0), ("q2", 1), ("q3", 0), ("q3", 1)]


def test_writer_gives_stable_ids_shares_cross_query_duplicates_and_drops_repeats(tmp_path):
    queries = {"q1": "first query", "q2": "second query", "q3": "failed query"}
    texts = {(q, lv): f"{q} passage at level {lv}" for q in queries for lv in LEVELS}
    texts["q2", 0] = "The SAME  passage, shared!"
    texts["q1", 0] = "the same passage shared"
    passages = [JournalPassage(q, 0, lv, texts[q, lv]) for q in ("q2", "q1", "q3") for lv in LEVELS]
    passages.append(JournalPassage("q1", 1, 3, "q1 PASSAGE at level 3."))  # sample 1 repeats sample 0's level 3
    written = write_beir(tmp_path, queries, passages, keep={"q1", "q2"}, split="train")

    corpus = read_corpus(tmp_path / "corpus.jsonl")
    qrels = read_qrels(tmp_path / "qrels" / "train.tsv")
    assert set(corpus) == {f"{q}-L{lv}-s0" for q in ("q1", "q2") for lv in LEVELS} - {"q1-L0-s0"}
    assert qrels["q1"] == {"q1-L3-s0": 3, "q1-L2-s0": 2, "q1-L1-s0": 1, "q2-L0-s0": 0}
    assert qrels["q2"] == {f"q2-L{lv}-s0": lv for lv in LEVELS}
    assert read_queries(tmp_path / "queries.jsonl") == {"q1": "first query", "q2": "second query"}
    assert (written.duplicates_across_queries, written.duplicates_within_query) == (1, 1)
    assert written.qrels_per_level == {3: 2, 2: 2, 1: 2, 0: 2}
    assert sorted(os.listdir(tmp_path)) == ["corpus.jsonl", "qrels", "queries.jsonl"]  # no temporary file left


def test_level_agreement_is_kendall_tau_over_levels():
    assert level_agreement([(3, 0.9), (2, 0.7), (1, 0.5), (0, 0.1)]) == 1.0
    assert level_agreement([(3, 0.1), (2, 0.5), (1, 0.7), (0, 0.9)]) == -1.0
    assert level_agreement([(3, 0.9), (2, 0.4), (1, 0.5), (0, 0.1)]) == pytest.approx(4 / 6)
    assert level_agreement([(3, 0.9), (3, 0.1), (0, 0.5)]) == 0.0  # same-level pairs do not count


def test_estimate_counts_the_rendered_prompts_and_scales_to_n_queries(tmp_path, minilm_path):
    (tmp_path / "q.jsonl").write_text(json.dumps({"_id": "q", "text": QUERY}) + "\n")
    one = estimate(str(tmp_path / "q.jsonl"), "all_levels", 1, minilm_path, per=1000)
    per_level = estimate(str(tmp_path / "q.jsonl"), "per_level", 2, minilm_path, per=1000)
    assert (one["requests"], per_level["requests"]) == (1000, 8000)
    assert 200 < per_level["prompt_tokens_per_request"] < one["prompt_tokens_per_request"] < 600
    assert 4 * per_level["answer_tokens_per_request"] < one["answer_tokens_per_request"]  # four passages + JSON
    assert one["prompt_tokens"] == pytest.approx(1000 * one["prompt_tokens_per_request"], abs=1000)


def test_backoff_doubles_with_jitter_honours_retry_after_and_is_capped():
    client = OpenAIChat("http://127.0.0.1:1/v1", "m", initial_backoff_s=1.0, max_backoff_s=10.0)
    for attempt, (low, high) in enumerate([(0.5, 1), (1, 2), (2, 4), (4, 8)]):
        assert all(low <= client._backoff(attempt, None) <= high for _ in range(20))
    assert client._backoff(6, None) == 10.0
    assert client._backoff(0, "5") == 5.0 and client._backoff(0, "120") == 10.0
    assert client._backoff(0, "Wed, 21 Oct 2015 07:28:00 GMT") <= 1


def scripted_client(replies: list) -> tuple[OpenAIChat, list]:
    """An OpenAIChat whose requests get ``replies`` in turn: an exception to raise, or a JSON body for a 200."""
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        reply = replies[len(calls) - 1]
        if isinstance(reply, Exception):
            raise reply
        return httpx.Response(200, json=reply)

    client = OpenAIChat("http://vllm:8000/v1", "m", max_retries=3, initial_backoff_s=0.001, max_backoff_s=0.001)
    client._client = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return client, calls


def test_a_refused_first_connection_is_no_server_but_a_refusal_after_an_answer_is_retried():
    answer = {"choices": [{"message": {"content": "fine"}, "finish_reason": "stop"}]}

    async def twice(client):
        try:
            return [await client.complete([[{"role": "user", "content": "q"}]]) for _ in range(2)]
        finally:
            await client.aclose()

    refused = httpx.ConnectError("All connection attempts failed")
    refused.__cause__ = ConnectionRefusedError(111, "Connect call failed")
    client, calls = scripted_client([refused, answer])
    with pytest.raises(ServerError) as stopped:
        asyncio.run(twice(client))
    assert len(calls) == 1 and stopped.value.unreachable and stopped.value.fatal
    assert str(stopped.value) == (
        "no server at http://vllm:8000/v1 (connection refused): start one (README, 'With vLLM') or set "
        "generator.base_url"
    )
    client, calls = scripted_client([httpx.ConnectError("[Errno -2] Name or service not known")])
    with pytest.raises(ServerError, match=r"no server at http://vllm:8000/v1 \(\[Errno -2\] Name or service"):
        asyncio.run(twice(client))

    # The server answered once: a refused connection now is a restart, retried with backoff as before.
    client, calls = scripted_client([answer, refused, refused, answer])
    first, second = asyncio.run(twice(client))
    assert len(calls) == 4 and first[0].text == second[0].text == "fine" and second[0].server_retries == 2

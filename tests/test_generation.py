"""generate.py against a real OpenAI-compatible HTTP server on 127.0.0.1 (tests/fake_openai_server.py).

Good path, HTTP retries, rejected answers, concurrency, kill -9 and resume, per-level prompts with
several samples and dedup, the consistency filter, and bad input.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import MissingConfigException
from omegaconf.errors import MissingMandatoryValue

from sycl.config import repo_root
from sycl.data import DataFormatError, SourceSpec, load_sources
from sycl.data.beir_files import iter_jsonl, read_corpus, read_qrels, read_queries
from sycl.generation import GenerationError, generate
from tests.conftest import CONF_DIR
from tests.fake_openai_server import FakeOpenAIServer, Reply, good_answer, json_answer, passage

SECRET = "sk-test-7f3a9c-never-in-any-file"
LEVELS = (3, 2, 1, 0)


def write_queries(path: Path, n: int) -> dict[str, str]:
    queries = {f"q{i}": f"what is the meaning of topic number {i}" for i in range(n)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items()))
    return queries


def overrides(server_url: str, queries: Path, output_dir: Path, *extra: str) -> list[str]:
    return [
        f"queries={queries}",
        f"output_dir={output_dir}",
        f"generator.base_url={server_url}",
        "generator.model=test-model",
        "generator.concurrency=4",
        "generator.initial_backoff_s=0.01",
        "generator.max_backoff_s=0.05",
        "progress=false",
        *extra,
    ]


def compose_generate(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONF_DIR):
        return compose("generate", overrides=overrides)


def run_generate(overrides: list[str]) -> dict:
    return generate(compose_generate(overrides))


def journal_records(output_dir: Path) -> list[dict]:
    return [record for _, record in iter_jsonl(output_dir / "journal.jsonl")][1:]


def files_under(*folders: Path) -> list[Path]:
    return [path for folder in folders for path in folder.rglob("*") if path.is_file()]


def test_good_path_writes_a_beir_folder_the_trainer_reads(tmp_path, monkeypatch):
    monkeypatch.setenv("SYCL_API_KEY", SECRET)
    queries = write_queries(tmp_path / "queries.jsonl", 6)
    out = tmp_path / "out"
    with FakeOpenAIServer() as server:
        extra = "+generator.sampling.response_format.type=json_object"  # any field the server takes, nested too
        report = run_generate(overrides(server.url, tmp_path / "queries.jsonl", out, extra))

    assert server.queries_asked() == Counter(queries.values())  # one request per query
    assert {call.authorization for call in server.calls} == {f"Bearer {SECRET}"}
    body = server.calls[0].body
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("test-model", 0.8, 1536)
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0]["role"] == "system" and "Search query: " in body["messages"][1]["content"]

    corpus, qrels = read_corpus(out / "corpus.jsonl"), read_qrels(out / "qrels" / "train.tsv")
    for query_id, text in queries.items():
        assert qrels[query_id] == {f"{query_id}-L{level}-s0": level for level in LEVELS}
        for level in LEVELS:
            assert corpus[f"{query_id}-L{level}-s0"] == passage(text, level, variant=1)
    assert read_queries(out / "queries.jsonl") == queries
    pool = load_sources(
        [SourceSpec(str(out / "corpus.jsonl"), str(out / "queries.jsonl"), str(out / "qrels/train.tsv"))]
    )
    assert len(pool.query_ids) == 6 and all(pool.pool_size(q) == 4 for q in queries)

    assert report["queries"] == {
        "input": 6,
        "complete": 6,
        "complete_before_this_run": 0,
        "completed_this_run": 6,
        "failed": 0,
        "written": 6,
    }
    assert report["tokens"] == {"prompt": 600, "completion": 300, "requests_without_usage": 0}
    assert report["passages"]["qrels_per_level"] == {"3": 6, "2": 6, "1": 6, "0": 6}
    assert report["passages"]["words"]["3"] == {"min": 30, "mean": 30.0, "median": 30, "max": 30}
    assert json.loads((out / "report.json").read_text()) == report
    assert not any(SECRET in path.read_text() for path in files_under(out))


def test_queries_can_be_limited_to_a_qrels_split_and_a_first_few(tmp_path):
    queries = write_queries(tmp_path / "queries.jsonl", 6)
    (tmp_path / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td\t1\nq3\td\t1\nq5\td\t1\n")
    extra = [f"queries_in_qrels={tmp_path / 'train.tsv'}", "max_queries=2"]
    with FakeOpenAIServer() as server:
        report = run_generate(overrides(server.url, tmp_path / "queries.jsonl", tmp_path / "out", *extra))
    assert server.queries_asked() == Counter([queries["q1"], queries["q3"]])
    assert report["queries"]["input"] == 2 and set(read_queries(tmp_path / "out" / "queries.jsonl")) == {"q1", "q3"}


def test_server_errors_are_retried_with_backoff_and_a_hopeless_request_fails_its_query(tmp_path):
    queries = write_queries(tmp_path / "queries.jsonl", 5)
    script = {
        1: Reply(status=429, headers={"Retry-After": "0"}, body='{"error": "rate limited"}'),
        2: Reply(status=503, body="overloaded"),
        3: Reply(drop=True),  # the connection closes without an answer
        4: Reply(body="<html>proxy error</html>"),  # 200 whose body is not a completion
    }

    def answer(call):
        if call.query == queries["q2"]:
            return Reply(status=400, body='{"error": "prompt is too long"}')  # not retryable
        if call.query == queries["q3"]:
            return Reply(status=500, body="internal error")
        return script.get(call.attempt) or good_answer(call)

    with FakeOpenAIServer(answer) as server:
        report = run_generate(
            overrides(server.url, tmp_path / "queries.jsonl", tmp_path / "out", "generator.max_retries=4")
        )

    asked = server.queries_asked()
    assert [asked[queries[q]] for q in ("q0", "q1", "q2", "q3", "q4")] == [5, 5, 1, 5, 5]
    assert report["requests"]["sent"] == 5 and report["requests"]["server_retries"] == 3 * 4 + 4
    assert report["queries"]["complete"] == 3 and report["failure_reasons"] == {"server_error": 2}
    assert "HTTP 400" in report["failed"]["q2"]["detail"] and "prompt is too long" in report["failed"]["q2"]["detail"]
    assert "HTTP 500" in report["failed"]["q3"]["detail"] and "after 5 attempts" in report["failed"]["q3"]["detail"]
    assert set(read_queries(tmp_path / "out" / "queries.jsonl")) == {"q0", "q1", "q4"}


def test_unusable_answers_are_asked_again_then_fail_their_query_with_the_reason(tmp_path):
    queries = write_queries(tmp_path / "queries.jsonl", 7)
    good = {q: json.loads(json_answer(text)) for q, text in queries.items()}
    by_query = {
        "q0": ["Here you go:\n```json\n" + json.dumps(good["q0"], indent=1) + "\n```\nHope this helps."],
        "q1": [json.dumps({k: v for k, v in good["q1"].items() if k != "2"}), json.dumps(good["q1"])],
        "q2": [json.dumps({**good["q2"], "1": ""})] * 3,
        "q3": [json.dumps({**good["q3"], "0": queries["q3"]})] * 3,
        "q4": [json.dumps({**good["q4"], "3": "long " * 400})] * 3,
        "q5": ["Sorry, I can only answer in prose.", json.dumps(good["q5"])],
        "q6": [json.dumps(good["q6"])[:60], json.dumps(good["q6"])],  # the first is cut off at max_tokens
    }
    text_to_id = {text: q for q, text in queries.items()}

    def answer(call):
        query_id = text_to_id[call.query]
        finish = "length" if query_id == "q6" and call.attempt == 1 else "stop"
        return Reply(content=by_query[query_id][call.attempt - 1], finish_reason=finish)

    with FakeOpenAIServer(answer) as server:
        report = run_generate(overrides(server.url, tmp_path / "queries.jsonl", tmp_path / "out"))

    asked = server.queries_asked()
    assert {q: asked[text] for q, text in queries.items()} == {q: len(a) for q, a in by_query.items()}
    assert {q: f["reason"] for q, f in report["failed"].items()} == {
        "q2": "empty",
        "q3": "copies_query",
        "q4": "too_long",
    }
    assert report["failed"]["q4"]["detail"] == "level 3 has 400 words (answers.max_words=250) (after 3 answers)"
    assert report["requests"]["answer_retries"] == 9
    assert report["requests"]["rejected_answers"] == {
        "empty": 3,
        "copies_query": 3,
        "too_long": 3,
        "missing_levels": 1,
        "no_json": 1,
        "truncated": 1,
    }
    out = tmp_path / "out"
    assert (
        set(read_queries(out / "queries.jsonl")) == set(read_qrels(out / "qrels/train.tsv")) == {"q0", "q1", "q5", "q6"}
    )
    assert read_corpus(out / "corpus.jsonl")["q1-L2-s0"] == good["q1"]["2"]


def test_requests_run_concurrently_up_to_the_limit(tmp_path):
    write_queries(tmp_path / "queries.jsonl", 8)
    with FakeOpenAIServer(lambda call: replace(good_answer(call), delay_s=0.3)) as server:
        report = run_generate(overrides(server.url, tmp_path / "queries.jsonl", tmp_path / "out"))
    assert server.max_in_flight == 4  # generator.concurrency
    assert report["queries"]["complete"] == 8
    assert report["requests"]["seconds"] < 8 * 0.3  # one at a time would take 2.4 s


def test_kill_9_mid_run_then_resume_loses_nothing_and_duplicates_nothing(tmp_path):
    queries = write_queries(tmp_path / "queries.jsonl", 40)
    out, logs = tmp_path / "out", tmp_path / "logs"
    env = {**os.environ, "SYCL_API_KEY": SECRET}
    with FakeOpenAIServer(lambda call: replace(good_answer(call), delay_s=0.25)) as server:
        command = [sys.executable, "generate.py", *overrides(server.url, tmp_path / "queries.jsonl", out)]
        command += [f"paths.log_dir={logs}", "progress=true"]
        with (tmp_path / "run1.log").open("w") as log:
            first = subprocess.Popen(command, cwd=repo_root(), env=env, stdout=log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and first.poll() is None:
                if (out / "journal.jsonl").is_file() and len(journal_records(out)) >= 10:
                    break
                time.sleep(0.05)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        assert first.returncode == -signal.SIGKILL, (tmp_path / "run1.log").read_text()[-2000:]
        asked_before_kill = server.queries_asked()
        journaled = {record["query"] for record in journal_records(out)}
        assert 10 <= len(journaled) < 40 and not (out / "corpus.jsonl").exists()

        second = subprocess.run(command, cwd=repo_root(), env=env, capture_output=True, text=True, timeout=180)
        assert second.returncode == 0, second.stderr[-3000:]
        asked_on_resume = server.queries_asked() - asked_before_kill

    assert not journaled & set(asked_on_resume)  # a journaled query is never asked again
    lost_in_flight = set(asked_before_kill) - journaled
    assert len(lost_in_flight) <= 4  # at most the requests in flight (generator.concurrency)
    assert set(asked_on_resume) == set(queries.values()) - journaled
    assert max(asked_on_resume.values()) == 1

    records = journal_records(out)
    assert sorted(r["query_id"] for r in records) == sorted(queries)  # each query exactly once in the journal
    qrels_lines = (out / "qrels" / "train.tsv").read_text().splitlines()[1:]
    assert len(qrels_lines) == len(set(qrels_lines)) == 160
    corpus_ids = [record["_id"] for _, record in iter_jsonl(out / "corpus.jsonl")]
    assert len(corpus_ids) == len(set(corpus_ids)) == 160
    report = json.loads((out / "report.json").read_text())
    assert report["queries"]["complete_before_this_run"] == len(journaled)
    assert report["queries"]["completed_this_run"] == 40 - len(journaled)
    assert "query/s" in second.stderr  # the progress bar shows a rate (and an ETA)
    logged = [(tmp_path / "run1.log").read_text(), second.stdout, second.stderr]
    assert not any(SECRET in text for text in logged + [p.read_text() for p in files_under(out, logs)])


def test_per_level_prompts_with_two_samples_and_dedup(tmp_path):
    queries = write_queries(tmp_path / "queries.jsonl", 3)

    def answer(call):
        if call.level == 0 and call.query == queries["q0"]:
            return Reply(content=passage("the same for both samples", 0))
        if call.level == 0 and call.attempt == 1 and call.query != queries["q0"]:
            return Reply(content=passage("shared by q1 and q2", 0))
        return good_answer(call)

    extra = ["prompts=per_level", "samples_per_level=2"]
    with FakeOpenAIServer(answer) as server:
        report = run_generate(overrides(server.url, tmp_path / "queries.jsonl", tmp_path / "out", *extra))

    assert Counter((call.query, call.level) for call in server.calls) == {
        (text, level): 2 for text in queries.values() for level in LEVELS
    }
    assert all("Search query: " in c.body["messages"][-1]["content"] for c in server.calls)
    qrels = read_qrels(tmp_path / "out" / "qrels" / "train.tsv")
    assert len(qrels["q0"]) == 7 and sorted(qrels["q0"].values()) == [0, 1, 1, 2, 2, 3, 3]
    (shared,) = set(qrels["q1"]) & set(qrels["q2"])  # one passage, stored once, judged for both queries
    assert qrels["q1"][shared] == qrels["q2"][shared] == 0
    assert report["passages"]["duplicates_within_query_dropped"] == 1
    assert report["passages"]["duplicates_across_queries_shared"] == 1
    assert len(read_corpus(tmp_path / "out" / "corpus.jsonl")) == 24 - 2
    assert report["requests"]["sent"] == 24


def test_rerunning_a_finished_job_asks_nothing_and_another_model_is_refused(tmp_path):
    write_queries(tmp_path / "queries.jsonl", 3)
    settings = [tmp_path / "queries.jsonl", tmp_path / "out"]
    with FakeOpenAIServer() as server:
        run_generate(overrides(server.url, *settings))
        corpus = (tmp_path / "out" / "corpus.jsonl").read_text()
        report = run_generate(overrides(server.url, *settings))
        assert len(server.calls) == 3 and report["queries"]["complete_before_this_run"] == 3
        assert (tmp_path / "out" / "corpus.jsonl").read_text() == corpus
        with pytest.raises(GenerationError, match=r"journal\.jsonl was written with a different model"):
            run_generate(overrides(server.url, *settings, "generator.model=another-model"))


def free_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens: a port bound, then closed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/v1"


def test_no_server_stops_at_once_with_one_line_and_leaves_nothing(tmp_path):
    write_queries(tmp_path / "queries.jsonl", 3)
    url = free_port_url()
    out = tmp_path / "out" / "new"
    started = time.monotonic()
    with pytest.raises(GenerationError) as stopped:  # default generator.max_retries=5: none is used
        run_generate(overrides(url, tmp_path / "queries.jsonl", out, "generator.initial_backoff_s=1.0"))
    assert time.monotonic() - started < 3
    assert str(stopped.value) == (
        f"no server at {url} (connection refused): start one (README, 'With vLLM') or set generator.base_url"
    )
    assert stopped.value.__cause__ is None and stopped.value.__suppress_context__  # nothing chained to print
    assert not (tmp_path / "out").exists()  # no journal, and not the folders made for it


def test_generate_py_without_a_server_prints_one_line_and_no_traceback(tmp_path):
    write_queries(tmp_path / "queries.jsonl", 2)
    url = free_port_url()
    command = [
        sys.executable,
        "generate.py",
        *overrides(url, tmp_path / "queries.jsonl", tmp_path / "out"),
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    env = {key: value for key, value in os.environ.items() if key != "HYDRA_FULL_ERROR"}
    started = time.monotonic()
    finished = subprocess.run(command, cwd=repo_root(), env=env, capture_output=True, text=True, timeout=120)
    assert time.monotonic() - started < 30  # Python and Hydra start-up included; the retries took about 20 s
    assert finished.returncode == 1
    assert finished.stderr == (
        f"generate.py: error: no server at {url} (connection refused): start one (README, 'With vLLM') or set "
        "generator.base_url\n"
    )
    assert "Traceback" not in finished.stdout and "Error" not in finished.stdout
    assert not (tmp_path / "out").exists()


def test_a_server_failing_every_request_stops_the_run_instead_of_failing_every_query(tmp_path):
    write_queries(tmp_path / "queries.jsonl", 30)
    with FakeOpenAIServer(lambda call: Reply(status=502, body="bad gateway")) as server:
        extra = ["generator.max_retries=1", "max_consecutive_server_failures=3"]
        with pytest.raises(GenerationError, match=r"failed 3 requests in a row .* HTTP 502: bad gateway"):
            run_generate(overrides(server.url, tmp_path / "queries.jsonl", tmp_path / "out", *extra))
    assert len(server.calls) <= (3 + 3) * 2  # the failures plus at most the other requests in flight


@pytest.mark.slow
def test_consistency_filter_flags_and_drops_lists_out_of_level_order(tmp_path):
    demo = Path(repo_root()) / "data" / "demo" / "synthetic"
    demo_queries, demo_corpus = read_queries(demo / "queries.jsonl"), read_corpus(demo / "corpus.jsonl")
    chosen = ["a03", "a06", "a10", "a11"]  # MiniLM ranks their demo lists in level order (tau 1, 2/3, 2/3, 2/3)
    reversed_ids = {"a06", "a11"}
    (tmp_path / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": demo_queries[q]}) + "\n" for q in chosen)
    )
    id_of = {demo_queries[q]: q for q in chosen}

    def answer(call):
        query_id = id_of[call.query]
        source = {level: 3 - level if query_id in reversed_ids else level for level in LEVELS}
        return Reply(content=json.dumps({str(lv): demo_corpus[f"{query_id}-L{source[lv]}"] for lv in LEVELS}))

    extra = ["consistency.enabled=true", "consistency.drop=true"]
    with FakeOpenAIServer(answer) as server:
        report = run_generate(overrides(server.url, tmp_path / "queries.jsonl", tmp_path / "out", *extra))
    assert report["consistency"]["flagged_queries"] == {"a06": -0.667, "a11": -0.667}
    assert report["consistency"]["dropped"] and report["queries"]["written"] == 2
    assert set(read_queries(tmp_path / "out" / "queries.jsonl")) == {"a03", "a10"}


def test_bad_input_is_named(tmp_path):
    server_url = "http://127.0.0.1:9/v1"  # never contacted: input is checked first
    out = tmp_path / "out"
    with pytest.raises(DataFormatError, match=r"nowhere\.jsonl: file not found"):
        run_generate(overrides(server_url, tmp_path / "nowhere.jsonl", out))
    (tmp_path / "bad.jsonl").write_text('{"_id": "q1", "text": "fine"}\n{"_id": "q2", "text": \n')
    with pytest.raises(DataFormatError, match=r"bad\.jsonl, line 2: not valid JSON"):
        run_generate(overrides(server_url, tmp_path / "bad.jsonl", out))
    (tmp_path / "noid.jsonl").write_text('{"text": "no id"}\n')
    with pytest.raises(DataFormatError, match=r"noid\.jsonl, line 1, field '_id': missing"):
        run_generate(overrides(server_url, tmp_path / "noid.jsonl", out))
    write_queries(out / "queries.jsonl", 2)
    with pytest.raises(ValueError, match="would overwrite the input"):
        run_generate(overrides(server_url, out / "queries.jsonl", out))
    with pytest.raises(
        MissingConfigException, match=r"'generator/nope'\n\nAvailable options in 'generator':\n\thf\n\topenai"
    ):
        compose_generate(["queries=x", "output_dir=y", "generator=nope"])
    with pytest.raises(MissingMandatoryValue, match="queries"):
        generate(compose_generate([f"output_dir={out}"]))
    assert not (out / "journal.jsonl").exists()


def test_a_bad_queries_file_fails_the_command_line_with_file_and_line(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"_id": "q1", "text": "fine"}\n["not", "an object"]\n')
    command = [sys.executable, "generate.py", f"queries={tmp_path / 'bad.jsonl'}", f"output_dir={tmp_path / 'o'}"]
    result = subprocess.run(
        command + [f"paths.log_dir={tmp_path}"], cwd=repo_root(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "bad.jsonl, line 2: each line must be a JSON object" in result.stderr

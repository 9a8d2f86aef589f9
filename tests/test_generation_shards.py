"""generate.py across several servers and array jobs: the server pool, base_url lists, shard=i/n, resume per shard,
and the merge.

Two instances of tests/fake_openai_server.py are two servers. Done means: two servers, or shards 0/2 and 1/2
joined by ``python -m sycl.generation.merge``, give the corpus, queries and qrels of one run on one server.
"""

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from sycl.config import repo_root
from sycl.data import DataFormatError
from sycl.data.beir_files import read_corpus, read_qrels, read_queries
from sycl.generation import GenerationError
from sycl.generation.chat import ServerError
from sycl.generation.merge import merge_generated
from sycl.generation.servers import ServerPool
from sycl.shards import Shard, parse_shard, shard_of
from tests.fake_openai_server import FakeOpenAIServer, Reply, good_answer, passage
from tests.test_generation import free_port_url, overrides, run_generate, write_queries

# q1 is in shard 0/2 and q3 in shard 1/2 (pinned below): the passage they share is met across shards.
SHARED = passage("one passage for two queries", 0)


def dataset(folder: Path) -> tuple[dict, dict, dict]:
    """(corpus, queries, qrels) of a generate.py output folder."""
    return (
        read_corpus(folder / "corpus.jsonl"),
        read_queries(folder / "queries.jsonl"),
        read_qrels(folder / "qrels" / "train.tsv"),
    )


def urls(*servers: FakeOpenAIServer) -> str:
    return "generator.base_url=[" + ",".join(server.url for server in servers) + "]"


def test_shards_are_a_stable_hash_of_the_id_and_partition_the_queries():
    assert [shard_of(f"q{i}", 2) for i in range(8)] == [1, 0, 0, 1, 0, 0, 1, 0]  # pinned: never changes
    ids = [f"query-{i}" for i in range(3000)]
    shards = [Shard(index, 3).select(ids) for index in range(3)]
    assert sorted(sum(shards, [])) == sorted(ids) and all(900 < len(shard) < 1100 for shard in shards)
    assert parse_shard("1/3") == Shard(1, 3) and str(parse_shard(" 0/2 ")) == "0/2" and parse_shard(None) is None
    for bad in ("2/2", "1", "a/2", "-1/2", "1/0", 3):
        with pytest.raises(ValueError, match=r"must be i/n with 0 <= i < n \(e.g. shard=0/4"):
            parse_shard(bad)


def test_the_pool_picks_the_least_busy_server_rests_a_failed_one_and_probes_it_one_request_at_a_time():
    pool = ServerPool(["http://a/v1/", "http://b/v1"], initial_backoff_s=10.0, max_backoff_s=60.0)
    a, b = pool.servers
    assert a.url == "http://a/v1/chat/completions" and len(pool) == 2
    a.in_flight, b.in_flight = 2, 3
    assert pool.choose() is a and pool.choose(avoid=a) is b
    pool.failed(a)
    assert pool.choose() is b  # a rests, though b is busier
    assert pool.choose(avoid=b) is b  # no other ready: b anyway (the caller waits its backoff if b is not ready)
    a.resting_until = 0.0
    assert pool.choose() is b  # a's rest is over, but it still has a request in flight: one probe at a time
    a.in_flight = 0
    assert pool.choose() is a
    for _ in range(5000):  # every request in flight at a long outage counts: the rest stays capped and finite
        pool.failed(a)
    assert a.resting_until - time.monotonic() <= 60.0
    pool.succeeded(a)
    assert a.failures_in_a_row == 0 and pool.choose() is a
    a.rejected, b.rejected = "HTTP 401", "HTTP 404"
    with pytest.raises(ServerError, match="every server of generator.base_url was ruled out: HTTP 401; HTTP 404"):
        pool.choose()

    pool = ServerPool(["http://a/v1", "http://b/v1", "http://c/v1"], initial_backoff_s=0.0, max_backoff_s=0.0)
    a, b, c = pool.servers
    pool.failed(a)  # rested at once (no backoff here), so a new request may probe it
    b.in_flight, c.in_flight = 1, 5
    assert pool.choose() is a
    pool.failed(b)
    assert pool.choose(avoid=b) is c  # a retry goes to the server that is not failing, though it is the busiest


def test_requests_are_spread_over_two_servers_and_give_the_corpus_of_one(tmp_path):
    write_queries(tmp_path / "queries.jsonl", 16)
    with FakeOpenAIServer() as one:
        run_generate(overrides(one.url, tmp_path / "queries.jsonl", tmp_path / "one"))
    with FakeOpenAIServer() as first, FakeOpenAIServer() as second:
        report = run_generate(overrides(first.url, tmp_path / "queries.jsonl", tmp_path / "two", urls(first, second)))
    assert len(first.calls) + len(second.calls) == 16 and min(len(first.calls), len(second.calls)) >= 4
    assert max(first.max_in_flight, second.max_in_flight) <= 4  # generator.concurrency is per server
    assert dataset(tmp_path / "two") == dataset(tmp_path / "one")
    assert report["queries"]["complete"] == 16 and report["requests"]["server_retries"] == 0


def test_a_failing_servers_requests_go_to_the_others(tmp_path):
    write_queries(tmp_path / "queries.jsonl", 12)
    with FakeOpenAIServer() as one:
        run_generate(overrides(one.url, tmp_path / "queries.jsonl", tmp_path / "one"))
    dead = free_port_url()
    bad_gateway = lambda call: Reply(status=502, body="bad gateway")  # noqa: E731
    with FakeOpenAIServer(bad_gateway) as failing, FakeOpenAIServer() as working:
        extra = ["generator.max_retries=2", f"generator.base_url=[{dead},{failing.url},{working.url}]"]
        report = run_generate(overrides(working.url, tmp_path / "queries.jsonl", tmp_path / "three", *extra))
    assert len(working.calls) == 12 and failing.calls  # each failed request was asked again at the working one
    assert dataset(tmp_path / "three") == dataset(tmp_path / "one")
    assert report["queries"]["failed"] == 0 and report["requests"]["server_retries"] >= len(failing.calls)


def test_a_server_that_rejects_the_model_is_left_out_and_none_at_all_is_one_line(tmp_path, caplog):
    write_queries(tmp_path / "queries.jsonl", 6)
    no_model = lambda call: Reply(status=404, body='{"error": "model not found"}')  # noqa: E731
    with FakeOpenAIServer(no_model) as wrong, FakeOpenAIServer() as right:
        report = run_generate(overrides(right.url, tmp_path / "queries.jsonl", tmp_path / "out", urls(wrong, right)))
    assert report["queries"]["complete"] == 6 and len(wrong.calls) <= 4  # at most the first requests in flight
    assert f"{wrong.url}/chat/completions: HTTP 404" in caplog.text and "go to the other servers" in caplog.text

    first, second = free_port_url(), free_port_url()
    with pytest.raises(GenerationError) as stopped:
        run_generate(
            overrides(first, tmp_path / "queries.jsonl", tmp_path / "none", f"generator.base_url=[{first},{second}]")
        )
    assert str(stopped.value) == (
        f"no server at {first} (connection refused) nor at {second} (connection refused): start one "
        "(README, 'With vLLM') or set generator.base_url"
    )
    assert not (tmp_path / "none").exists()


def shared_answer(queries: dict[str, str]):
    """Good answers, except that q1 and q3 get the same level-0 passage."""

    def answer(call):
        if call.query in (queries["q1"], queries["q3"]):
            content = json.loads(good_answer(call).content)
            return Reply(content=json.dumps({**content, "0": SHARED}))
        return good_answer(call)

    return answer


def test_two_shards_merged_give_the_dataset_and_report_of_one_run(tmp_path):
    queries = write_queries(tmp_path / "queries.jsonl", 12)
    assert (shard_of("q1", 2), shard_of("q3", 2)) == (0, 1)
    # A server per setup: the fake server varies a repeated request's answer, as sampling would.
    with FakeOpenAIServer(shared_answer(queries)) as server:  # concurrency 1: journal order is file order
        one = run_generate(
            overrides(server.url, tmp_path / "queries.jsonl", tmp_path / "one", "generator.concurrency=1")
        )
    with FakeOpenAIServer(shared_answer(queries)) as server:
        for index in (1, 0):
            shard = overrides(server.url, tmp_path / "queries.jsonl", tmp_path / f"shard{index}", f"shard={index}/2")
            run_generate(shard)
    assert Counter(call.query for call in server.calls) == Counter(queries.values())  # each in one shard, once
    assert set(read_queries(tmp_path / "shard0" / "queries.jsonl")) == {f"q{i}" for i in (1, 2, 4, 5, 7, 10, 11)}

    merged = merge_generated([tmp_path / "shard0", tmp_path / "shard1"], tmp_path / "merged")
    corpus, merged_queries, qrels = dataset(tmp_path / "merged")
    assert (corpus, merged_queries, qrels) == dataset(tmp_path / "one")
    assert qrels["q1"]["q1-L0-s0"] == qrels["q3"]["q1-L0-s0"] == 0 and "q3-L0-s0" not in corpus
    assert len(corpus) == 12 * 4 - 1 and list(merged_queries) == sorted(
        queries, key=lambda q: (shard_of(q, 2), int(q[1:]))
    )
    for section in ("queries", "passages", "tokens", "failure_reasons"):
        assert merged[section] == one[section], section
    assert merged["requests"]["sent"] == 12 and merged["setup"] == one["setup"]
    assert [shard["shard"] for shard in merged["shards"]] == ["0/2", "1/2"]
    assert json.loads((tmp_path / "merged" / "report.json").read_text()) == merged

    again = merge_generated([tmp_path / "shard1", tmp_path / "shard0"], tmp_path / "again")  # any order given
    assert (tmp_path / "again" / "corpus.jsonl").read_bytes() == (tmp_path / "merged" / "corpus.jsonl").read_bytes()
    assert again["passages"] == merged["passages"]


def test_a_shard_resumes_in_its_own_folder_and_refuses_another_shards(tmp_path):
    queries = write_queries(tmp_path / "queries.jsonl", 24)
    shard1 = [q for q in queries if shard_of(q, 2) == 1]

    def fails_after_four(call):
        return good_answer(call) if len(server.calls) <= 4 else Reply(status=502, body="bad gateway")

    extra = ["shard=1/2", "generator.concurrency=1", "generator.max_retries=0", "max_consecutive_server_failures=2"]
    with FakeOpenAIServer(fails_after_four) as server, pytest.raises(GenerationError, match="failed 2 requests in a"):
        run_generate(overrides(server.url, tmp_path / "queries.jsonl", tmp_path / "shard1", *extra))
    with FakeOpenAIServer() as server:
        report = run_generate(overrides(server.url, tmp_path / "queries.jsonl", tmp_path / "shard1", *extra))
        with pytest.raises(GenerationError, match=r"journal\.jsonl was written with a different shard"):
            run_generate(overrides(server.url, tmp_path / "queries.jsonl", tmp_path / "shard1", "shard=0/2"))
    assert report["queries"]["complete_before_this_run"] == 4
    assert {call.query for call in server.calls} == {queries[q] for q in shard1[4:]}
    assert set(read_queries(tmp_path / "shard1" / "queries.jsonl")) == set(shard1)


def test_merge_refuses_a_missing_or_repeated_shard_another_setup_and_content_that_disagrees(tmp_path):
    write_queries(tmp_path / "queries.jsonl", 8)
    with FakeOpenAIServer() as server:
        for index in range(2):
            run_generate(overrides(server.url, tmp_path / "queries.jsonl", tmp_path / f"s{index}", f"shard={index}/2"))
        run_generate(overrides(server.url, tmp_path / "queries.jsonl", tmp_path / "s0of3", "shard=0/3"))
        run_generate(
            overrides(server.url, tmp_path / "queries.jsonl", tmp_path / "other", "shard=1/2", "generator.model=m2")
        )
    s0, s1 = tmp_path / "s0", tmp_path / "s1"
    with pytest.raises(GenerationError, match=r"shard 1/2 missing: give all 2 shard folders"):
        merge_generated([s0], tmp_path / "m")
    with pytest.raises(GenerationError, match=r"s0 are both shard 0/2"):
        merge_generated([s0, s1, s0], tmp_path / "m")
    with pytest.raises(GenerationError, match=r"s0of3 is shard 0/3, .*s0 is shard 0/2: one n for all"):
        merge_generated([s0, tmp_path / "s0of3"], tmp_path / "m")
    with pytest.raises(GenerationError, match=r"differ in model: model 'm2' vs 'test-model'"):
        merge_generated([s0, tmp_path / "other"], tmp_path / "m")
    with pytest.raises(GenerationError, match=r"s1 is one of the shard folders"):
        merge_generated([s0, s1], s1)
    with pytest.raises(GenerationError, match=r"nowhere holds no finished generate\.py output"):
        merge_generated([s0, tmp_path / "nowhere"], tmp_path / "m")

    qrels = s1 / "qrels" / "train.tsv"
    original = qrels.read_text()
    query_id, doc_id, level = (s0 / "qrels" / "train.tsv").read_text().splitlines()[1].split("\t")
    qrels.write_text(original + f"{query_id}\t{doc_id}\t{int(level) - 1}\n")
    with pytest.raises(DataFormatError) as refused:
        merge_generated([s0, s1], tmp_path / "m")
    assert str(refused.value) == (
        f"{qrels}, line {len(original.splitlines()) + 1}: query {query_id!r} judges passage {doc_id!r} "
        f"{int(level) - 1}, but {level} in {s0 / 'qrels' / 'train.tsv'}, line 2"
    )
    qrels.write_text(original)

    corpus_line = (s0 / "corpus.jsonl").read_text().splitlines()[2]
    record = json.loads(corpus_line)
    with (s1 / "corpus.jsonl").open("a") as corpus:
        corpus.write(corpus_line + "\n")  # the same passage again: kept once
        corpus.write(json.dumps({**record, "text": "Another text under the same id."}) + "\n")
    lines = len((s1 / "corpus.jsonl").read_text().splitlines())
    with pytest.raises(DataFormatError) as refused:
        merge_generated([s0, s1], tmp_path / "m")
    assert str(refused.value) == (
        f"{s1 / 'corpus.jsonl'}, line {lines}, field '_id': passage {record['_id']!r} differs from the one in "
        f"{s0 / 'corpus.jsonl'}, line 3"
    )
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())  # a refused merge writes nothing


def test_merge_command_line_writes_once_and_refuses_an_existing_output_in_one_line(tmp_path):
    write_queries(tmp_path / "queries.jsonl", 6)
    with FakeOpenAIServer() as server:
        for index in range(2):
            run_generate(overrides(server.url, tmp_path / "queries.jsonl", tmp_path / f"s{index}", f"shard={index}/2"))
    command = [sys.executable, "-m", "sycl.generation.merge", str(tmp_path / "s0"), str(tmp_path / "s1")]
    command += ["--output", str(tmp_path / "merged")]
    first = subprocess.run(command, cwd=repo_root(), capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert (
        first.stdout
        == f"Merged 2 folders into {tmp_path / 'merged'}: 6 queries, 24 passages (0 shared across queries)\n"
    )
    second = subprocess.run(command, cwd=repo_root(), capture_output=True, text=True, timeout=120)
    assert second.returncode == 1
    assert (
        second.stderr
        == f"merge.py: error: {tmp_path / 'merged' / 'corpus.jsonl'} exists: add --overwrite to replace it\n"
    )
    assert subprocess.run([*command, "--overwrite"], cwd=repo_root(), capture_output=True, timeout=120).returncode == 0


def test_an_empty_shard_says_to_use_fewer(tmp_path):
    write_queries(tmp_path / "queries.jsonl", 2)
    empty = next(i for i in range(8) if all(shard_of(q, 8) != i for q in ("q0", "q1")))
    with pytest.raises(DataFormatError, match=rf"shard={empty}/8 holds none of its 2 queries: use fewer shards"):
        run_generate(overrides("http://127.0.0.1:9/v1", tmp_path / "queries.jsonl", tmp_path / "o", f"shard={empty}/8"))

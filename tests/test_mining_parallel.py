"""mine.py over several processes and array jobs: miner.workers, shard=i/n, and python -m sycl.mining.merge.

Done means: 2 workers write the bytes 1 worker writes, and shards 0/2 + 1/2 merged hold the negatives of one run.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sycl.data import DataFormatError
from sycl.mining import BM25Miner, mine
from sycl.mining.merge import merge_negatives
from tests.conftest import CONF_DIR, compose_config

ROOT = Path(CONF_DIR).parent
DEMO_REAL = ROOT / "data" / "demo" / "real"
# The demo's 120 training queries in batches of 7, 10 negatives sampled from the top 30: several batches, each
# split over the workers, and the seeded per-query sampling, all of which must not depend on who ranks a query.
SAMPLED = [f"dataset={DEMO_REAL}", "top_k=30", "negatives_per_query=10", "miner.query_batch_size=7"]


def mine_to(tmp_path: Path, output: Path, *overrides: str) -> dict:
    return mine(compose_config("mine", tmp_path / "run", ["progress=false", f"output={output}", *overrides]))


def lines_by_query(path: Path) -> dict[str, str]:
    return {json.loads(line)["query-id"]: line for line in path.read_text().splitlines()}


def test_two_workers_write_the_bytes_of_one(tmp_path):
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    mine_to(tmp_path, one, *SAMPLED)
    summary = mine_to(tmp_path, two, *SAMPLED, "miner.workers=2")
    assert two.read_bytes() == one.read_bytes() and summary["queries_written"] == 120


def test_two_workers_rank_past_ties_as_one(tmp_path):
    texts = ["iron deficiency and fatigue"] * 6 + ["iron pans", "flu season", "iron deficiency in plants", "flu"]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"_id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
    queries = {f"q{i}": ["iron deficiency", "flu", "iron"][i % 3] for i in range(9)}
    one = list(BM25Miner(progress=False).rank(corpus, queries, 3, past_ties=True))
    two = list(BM25Miner(workers=2, query_batch_size=4, progress=False).rank(corpus, queries, 3, past_ties=True))
    tied = [doc for doc, _ in dict(one)["q0"][:6]]
    assert two == one and tied == [f"d{i}" for i in range(6)]  # all six tied passages, though top_k is 3
    with pytest.raises(ValueError, match=r"miner\.workers=0 must be >= 1"):
        BM25Miner(workers=0)


def test_shards_merged_hold_the_negatives_of_one_run(tmp_path):
    whole = tmp_path / "whole.jsonl"
    one_run = mine_to(tmp_path, whole, *SAMPLED)
    shards = [tmp_path / f"shard{index}.jsonl" for index in range(2)]
    summaries = [mine_to(tmp_path, path, *SAMPLED, f"shard={index}/2") for index, path in enumerate(shards)]
    assert [s["shard"] for s in summaries] == ["0/2", "1/2"] and all(s["queries"] > 30 for s in summaries)
    assert not set(lines_by_query(shards[0])) & set(lines_by_query(shards[1]))

    merged = tmp_path / "merged.jsonl"
    summary = merge_negatives(shards, merged)
    assert lines_by_query(merged) == lines_by_query(whole)
    assert summary == {"files": 2, "queries": 120, "negatives": one_run["negatives"], "repeated_lines_dropped": 0}


def test_merge_keeps_a_repeated_line_once_and_refuses_one_that_disagrees(tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    line = {"query-id": "q1", "corpus-ids": ["d1", "d2"], "scores": [0, 0], "retrieval-scores": [2.5, 1.0]}
    first.write_text(json.dumps(line) + "\n" + json.dumps({**line, "query-id": "q2"}) + "\n")
    second.write_text(json.dumps({**line, "query-id": "q3"}) + "\n" + json.dumps(line) + "\n")
    summary = merge_negatives([first, second], tmp_path / "merged.jsonl")
    assert list(lines_by_query(tmp_path / "merged.jsonl")) == ["q1", "q2", "q3"]
    assert summary["repeated_lines_dropped"] == 1 and summary["negatives"] == 6

    second.write_text(second.read_text() + json.dumps({**line, "corpus-ids": ["d1", "d9"]}) + "\n")
    with pytest.raises(DataFormatError) as refused:
        merge_negatives([first, second], tmp_path / "other.jsonl")
    assert (
        str(refused.value)
        == f"{second}, line 3, field 'query-id': query 'q1' has other negatives than in {first}, line 1"
    )
    assert not (tmp_path / "other.jsonl").exists() and sorted(p.name for p in tmp_path.iterdir()) == [
        "a.jsonl",
        "b.jsonl",
        "merged.jsonl",
    ]
    with pytest.raises(FileExistsError, match="is one of the input files"):
        merge_negatives([first, second], first, overwrite=True)


def test_merge_command_line_refuses_an_existing_output_in_one_line(tmp_path):
    source = tmp_path / "a.jsonl"
    source.write_text(json.dumps({"query-id": "q1", "corpus-ids": ["d1"], "scores": [0]}) + "\n")
    command = [sys.executable, "-m", "sycl.mining.merge", str(source), "--output", str(tmp_path / "out.jsonl")]
    first = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert (
        first.stdout
        == f"Merged 1 files into {tmp_path / 'out.jsonl'}: 1 negatives for 1 queries (0 repeated lines dropped)\n"
    )
    second = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert second.returncode == 1 and second.stderr == (
        f"merge.py: error: {tmp_path / 'out.jsonl'} exists: add --overwrite to replace it, or choose another --output\n"
    )

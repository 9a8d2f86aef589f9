"""A catalogue of bad inputs, each run through the real entry point (train.py, eval.py, mine.py, generate.py).

Every entry must make the command exit non-zero and print one message line that names the file, the
line and the field (for a config error, the config key; for a server fault, the URL and the fault; for
unusable LLM answers, a query and the reason). It must leave no partial output: no checkpoints/ or
model/ of a train run, no results of the failing eval dataset, no mined negatives file, no generated
corpus/queries/qrels (and, for bad input or config or no server at all, no journal either), no temporary
file of an atomic write.

Each entry runs in its own workspace (``tmp_path``, called ``<ws>`` in the message patterns): a copy of
the demo data for train.py, small BEIR folders for eval.py and mine.py, a queries file and a local
fake OpenAI server for generate.py. An entry breaks one thing in it and runs the command.
"""

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sycl.config import repo_root
from tests.beir_fixtures import write_beir
from tests.fake_openai_server import Call, FakeOpenAIServer, Reply, good_answer, passage

ROOT = Path(repo_root())
TIMEOUT_S = 180

# The demo source train.py reads; a line appended to one of its files gets the number after these.
SYNTHETIC = "data/demo/synthetic"
CORPUS_LINES = len((ROOT / SYNTHETIC / "corpus.jsonl").read_text().splitlines())
QRELS_LINES = len((ROOT / SYNTHETIC / "qrels" / "train.tsv").read_text().splitlines())


@dataclass(frozen=True)
class BadInput:
    """One catalogue entry: break the workspace, run ``entry`` with ``overrides``, expect ``message``.

    ``message``: regexes that one line of the output (stdout + stderr, ``<ws>`` for the workspace)
    must all match. ``absent``: globs under the workspace that must match nothing afterwards.
    ``answer``: how generate.py's fake server answers each request; None: no server listens at all.
    """

    entry: str
    message: tuple[str, ...]
    breaks: Callable[[Path], None] | None = None
    overrides: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    answer: Callable[[Call], Reply] | None = good_answer


def replace_line(relative: str, number: int, text: str) -> Callable[[Path], None]:
    """Replace line ``number`` (1-based) of a workspace file."""

    def breaks(workspace: Path) -> None:
        path = workspace / relative
        lines = path.read_text().splitlines()
        lines[number - 1] = text
        path.write_text("\n".join(lines) + "\n")

    return breaks


def append_line(relative: str, text: str) -> Callable[[Path], None]:
    def breaks(workspace: Path) -> None:
        with (workspace / relative).open("a") as handle:
            handle.write(text + "\n")

    return breaks


def delete(relative: str) -> Callable[[Path], None]:
    return lambda workspace: (workspace / relative).unlink()


def record(**fields) -> str:
    return json.dumps(fields)


# What each entry point must not leave behind when it fails.
TRAIN_OUTPUTS = ("logs/**/checkpoints", "logs/**/model", "logs/**/results*.json")
EVAL_OUTPUTS = ("logs/**/runs/*bad*.trec",)  # and no results*.json row for "bad": see leftovers()
MINE_OUTPUTS = ("negatives.jsonl", "ds/qrels/*negatives*")
GENERATED = ("out/corpus.jsonl", "out/queries.jsonl", "out/qrels")
GENERATED_OR_JOURNAL = (*GENERATED, "out/journal.jsonl")


def train(message, breaks=None, overrides=()) -> BadInput:
    return BadInput("train.py", message, breaks, overrides, TRAIN_OUTPUTS)


def evaluate(message, breaks=None, overrides=()) -> BadInput:
    return BadInput("eval.py", message, breaks, overrides, EVAL_OUTPUTS)


def mine(message, breaks=None, overrides=()) -> BadInput:
    return BadInput("mine.py", message, breaks, overrides, MINE_OUTPUTS)


def generate(message, breaks=None, overrides=(), answer=good_answer, absent=GENERATED_OR_JOURNAL) -> BadInput:
    return BadInput("generate.py", message, breaks, overrides, absent, answer)


def prose(call: Call) -> Reply:
    return Reply(content="Sorry, I can only answer in prose, not in JSON.")


def without_level_1(call: Call) -> Reply:
    return Reply(content=json.dumps({str(level): passage(call.query, level) for level in (3, 2, 0)}))


def server_error(call: Call) -> Reply:
    return Reply(status=500, body="internal error")


def too_slow(call: Call) -> Reply:
    return Reply(delay_s=2.0, drop=True)  # dropped, not written: the client has long given up


CASES = {
    # train.py: the demo sources, each file broken in one way
    "train-corpus-line-not-json": train(
        (rf"<ws>/{SYNTHETIC}/corpus\.jsonl, line {CORPUS_LINES + 1}: not valid JSON",),
        append_line(f"{SYNTHETIC}/corpus.jsonl", '{"_id": "a99-L0", "text": '),
    ),
    "train-qrels-id-not-in-corpus": train(
        (rf"<ws>/{SYNTHETIC}/qrels/train\.tsv, line {QRELS_LINES + 1}, field 'corpus-id': 'nowhere'",),
        append_line(f"{SYNTHETIC}/qrels/train.tsv", "a01\tnowhere\t1"),
    ),
    "train-queries-file-missing": train(
        (rf"<ws>/{SYNTHETIC}/queries\.jsonl: file not found",),
        delete(f"{SYNTHETIC}/queries.jsonl"),
    ),
    "train-corpus-duplicate-id-conflicting-text": train(
        (rf"<ws>/{SYNTHETIC}/corpus\.jsonl", rf"\b{CORPUS_LINES + 1}\b", r"\b1\b", r"a01-L3|'_id'"),
        append_line(f"{SYNTHETIC}/corpus.jsonl", record(_id="a01-L3", title="", text="Photosynthesis in leaves.")),
    ),
    "train-unknown-loss": train((r"'loss/nope'",), overrides=("loss=nope",)),
    "train-fraction-zero": train((r"data\.train_fraction=0",), overrides=("data.train_fraction=0",)),
    "train-unknown-selection": train((r"data\.selection='bogus'",), overrides=("data.selection=bogus",)),
    # eval.py: datasets=[good, bad]; the good one is evaluated first, the bad one must fail cleanly
    "eval-corpus-line-not-json": evaluate(
        (r"<ws>/bad/corpus\.jsonl, line 4: not valid JSON",), append_line("bad/corpus.jsonl", '{"_id": "d4", ')
    ),
    "eval-corpus-text-not-a-string": evaluate(
        (r"<ws>/bad/corpus\.jsonl, line 2, field 'text': must be a string",),
        replace_line("bad/corpus.jsonl", 2, record(_id="d2", title="", text=42)),
    ),
    "eval-qrels-two-columns": evaluate(
        (r"<ws>/bad/qrels/test\.tsv, line 4: expected 3 columns \(query-id, corpus-id, score\), got 2",),
        replace_line("bad/qrels/test.tsv", 4, "q2\td3"),
    ),
    "eval-qrels-file-missing": evaluate((r"<ws>/bad/qrels/test\.tsv",), delete("bad/qrels/test.tsv")),
    "eval-unknown-backend": evaluate((r"evaluation\.backend='nope'",), overrides=("evaluation.backend=nope",)),
    # mine.py: a small BEIR folder, negatives to <ws>/negatives.jsonl
    "mine-queries-line-not-json": mine(
        (r"<ws>/ds/queries\.jsonl, line 2: not valid JSON",), replace_line("ds/queries.jsonl", 2, "q2 how long")
    ),
    "mine-corpus-line-not-json": mine(
        (r"<ws>/ds/corpus\.jsonl, line 7: not valid JSON",), append_line("ds/corpus.jsonl", '{"_id": "d7", ')
    ),
    "mine-corpus-record-without-id": mine(
        (r"<ws>/ds/corpus\.jsonl, line 2, field '_id': missing",),
        replace_line("ds/corpus.jsonl", 2, record(title="", text="no id here")),
    ),
    "mine-qrels-score-infinite": mine(
        (r"<ws>/ds/qrels/train\.tsv, line 3, field 'score': score must be finite",),
        replace_line("ds/qrels/train.tsv", 3, "q2\td3\tinf"),
    ),
    "mine-qrels-score-not-a-number": mine(
        (r"<ws>/ds/qrels/train\.tsv, line 2, field 'score': .*'abc'",),
        replace_line("ds/qrels/train.tsv", 2, "q1\td1\tabc"),
    ),
    # Only line 1 may be a header: a header-like row further down is a bad score.
    "mine-qrels-header-inside": mine(
        (r"<ws>/ds/qrels/train\.tsv, line 3, field 'score'",),
        replace_line("ds/qrels/train.tsv", 3, "qid\tdocid\tlabel"),
    ),
    # generate.py: <ws>/queries.jsonl (q0, q1) -> <ws>/out, against a local fake server
    "generate-query-without-id": generate(
        (r"<ws>/queries\.jsonl, line 2, field '_id': missing",),
        replace_line("queries.jsonl", 2, record(text="a query without an id")),
    ),
    "generate-query-text-empty": generate(
        (r"<ws>/queries\.jsonl, line 2, field 'text': is empty",),
        replace_line("queries.jsonl", 2, record(_id="q1", text="   ")),
    ),
    "generate-query-text-not-a-string": generate(
        (r"<ws>/queries\.jsonl, line 1, field 'text': must be a string",),
        replace_line("queries.jsonl", 1, record(_id="q0", text=["a", "list"])),
    ),
    "generate-query-duplicate-id-conflicting-text": generate(
        (r"<ws>/queries\.jsonl", r"\b3\b", r"\b1\b", r"q0|'_id'"),
        append_line("queries.jsonl", record(_id="q0", text="an entirely different question")),
    ),
    "generate-unknown-prompts": generate((r"'prompts/nope'",), overrides=("prompts=nope",)),
    "generate-server-error-500": generate(
        (r"http://127\.0\.0\.1:\d+/v1/chat/completions: HTTP 500",), answer=server_error, absent=GENERATED
    ),
    # No server at all: said at once, without retries, and nothing is left (no journal, no output folder).
    "generate-server-unreachable": generate(
        (r"^generate\.py: error: no server at http://127\.0\.0\.1:\d+/v1 \(connection refused\)", r"base_url"),
        answer=None,
        absent=(*GENERATED_OR_JOURNAL, "out"),
    ),
}

CASES.update(
    {
        "eval-qrels-score-fractional": evaluate(
            (r"<ws>/bad/qrels/test\.tsv, line 3, field 'score'",),
            replace_line("bad/qrels/test.tsv", 3, "q2\td2\t1.5"),
        ),
        "mine-top-k-zero": mine((r"\btop_k\b",), overrides=("top_k=0",)),
        "generate-every-answer-not-json": generate((r"\bq[01]\b", r"no JSON object"), answer=prose, absent=GENERATED),
        "generate-every-answer-missing-a-level": generate(
            (r"\bq[01]\b", r"levels? 1 missing"), answer=without_level_1, absent=GENERATED
        ),
        "generate-server-timeout": generate(
            (r"http://127\.0\.0\.1:\d+/v1/chat/completions", r"generator\.timeout_s"),
            overrides=("generator.timeout_s=0.3",),
            answer=too_slow,
            absent=GENERATED,
        ),
        "generate-concurrency-zero": generate((r"generator\.concurrency",), overrides=("generator.concurrency=0",)),
    }
)


def build_workspace(entry: str, workspace: Path) -> None:
    """The good input of ``entry`` in ``workspace``, for a case to break."""
    if entry == "train.py":
        for part in ("synthetic", "test"):
            shutil.copytree(ROOT / "data" / "demo" / part, workspace / "data" / "demo" / part)
    elif entry == "eval.py":
        for name in ("good", "bad"):
            write_beir(
                workspace / name,
                {"q1": "capital of france", "q2": "height of mount everest"},
                {
                    "d1": "Paris is the capital of France.",
                    "d2": "Mount Everest is 8849 metres high.",
                    "d3": "Everest base camp is a trek.",
                },
                [("q1", "d1", 1), ("q2", "d2", 2), ("q2", "d3", 0)],
                split="test",
            )
    elif entry == "mine.py":
        write_beir(
            workspace / "ds",
            {"q1": "iron deficiency symptoms", "q2": "how long does the flu last", "q3": "solar panel cost"},
            {
                "d1": "Iron deficiency symptoms include fatigue.",
                "d2": "Iron deficiency in plants yellows leaves.",
                "d3": "The flu lasts about a week.",
                "d4": "A cold lasts ten days, shorter than the flu.",
                "d5": "Solar panel cost has fallen.",
                "d6": "Panel discussions cost nothing to attend.",
            },
            [("q1", "d1", 1), ("q2", "d3", 1), ("q3", "d5", 1)],
        )
    else:
        queries = {f"q{i}": f"what is the meaning of topic number {i}" for i in range(2)}
        (workspace / "queries.jsonl").write_text("".join(record(_id=q, text=t) + "\n" for q, t in queries.items()))


def command(entry: str, workspace: Path, tiny_model: str, server_url: str) -> list[str]:
    """The entry point with outputs under the workspace and the cheapest settings that reach the check."""
    overrides = [f"paths.log_dir={workspace / 'logs'}", f"paths.cache_dir={workspace / 'cache'}"]
    if entry == "train.py":
        # Should a bad input get through, the run stays short, and still writes checkpoints/ and model/.
        overrides += [
            f"paths.data_dir={workspace / 'data'}",
            f"model.name_or_path={tiny_model}",
            "logger=csv",
            "data.batch_size=4",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=1",
            "evaluation.progress=false",
        ]
    elif entry == "eval.py":
        overrides += [
            f"datasets=[{workspace / 'good'},{workspace / 'bad'}]",
            f"model.name_or_path={tiny_model}",
            "evaluation.progress=false",
        ]
    elif entry == "mine.py":
        overrides += [
            f"dataset={workspace / 'ds'}",
            f"output={workspace / 'negatives.jsonl'}",
            "download=false",
            "top_k=10",
            "negatives_per_query=2",
            "progress=false",
        ]
    else:
        overrides += [
            f"queries={workspace / 'queries.jsonl'}",
            f"output_dir={workspace / 'out'}",
            f"generator.base_url={server_url}",
            "generator.model=test-model",
            "generator.concurrency=1",
            "generator.max_retries=1",
            "generator.initial_backoff_s=0.01",
            "generator.max_backoff_s=0.05",
            "max_attempts=2",
            "max_consecutive_server_failures=2",
            "progress=false",
        ]
    return [sys.executable, entry, *overrides]


@contextlib.contextmanager
def serving(answer: Callable[[Call], Reply] | None) -> Iterator[str]:
    """The base URL of a fake server answering with ``answer``; for None, one on a port where nothing listens."""
    if answer is None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        yield f"http://127.0.0.1:{port}/v1"
        return
    with FakeOpenAIServer(answer) as server:
        yield server.url


def with_overrides(args: list[str], overrides: tuple[str, ...]) -> list[str]:
    """``args`` with ``overrides`` appended, each replacing an earlier override of the same key."""
    keys = {override.split("=")[0] for override in overrides}
    return [arg for arg in args if arg.split("=")[0] not in keys] + list(overrides)


def leftovers(case: BadInput, workspace: Path) -> list[str]:
    """What the failed run left that it must not: the case's globs, atomic-write temporaries, bad results."""
    found = [path for pattern in (*case.absent, "**/.*.tmp") for path in workspace.glob(pattern)]
    for results in workspace.glob("logs/**/results*.json"):
        if case.entry == "eval.py" and "bad" in json.loads(results.read_text()):
            found.append(results)
    return [str(path.relative_to(workspace)) for path in found]


def message_line(output: str, patterns: tuple[str, ...]) -> str | None:
    """The first output line that matches every pattern."""
    return next((line for line in output.splitlines() if all(re.search(p, line) for p in patterns)), None)


@pytest.mark.parametrize("case", [pytest.param(case, id=name) for name, case in CASES.items()])
def test_bad_input_fails_with_a_located_message_and_no_partial_output(case, tmp_path, tiny_model_path):
    build_workspace(case.entry, tmp_path)
    if case.breaks:
        case.breaks(tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    env.pop("HYDRA_FULL_ERROR", None)
    with serving(case.answer) as server_url:
        args = with_overrides(command(case.entry, tmp_path, tiny_model_path, server_url), case.overrides)
        finished = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    output = (finished.stdout + "\n" + finished.stderr).replace(str(tmp_path), "<ws>")
    tail = output[-3000:]
    assert finished.returncode != 0, f"exit 0 on bad input:\n{tail}"
    assert message_line(output, case.message), f"no line matches all of {case.message}:\n{tail}"
    assert not leftovers(case, tmp_path), f"partial output left: {leftovers(case, tmp_path)}\n{tail}"

"""Writing small BEIR-layout folders for tests."""

import json
from pathlib import Path


def write_beir(folder: Path, queries: dict[str, str], corpus: dict[str, str], qrels: list[tuple], split="train"):
    """Write queries.jsonl, corpus.jsonl and qrels/<split>.tsv; returns the paths as a source dict."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items()))
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "title": "", "text": t}) + "\n" for d, t in corpus.items())
    )
    (folder / "qrels").mkdir(exist_ok=True)
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q, d, s in qrels]
    (folder / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return {
        "corpus": str(folder / "corpus.jsonl"),
        "queries": str(folder / "queries.jsonl"),
        "qrels": str(folder / "qrels" / f"{split}.tsv"),
    }


def graded_source(folder: Path, num_queries=3, levels=(3, 2, 1, 0)) -> dict:
    """num_queries queries, one passage per level; passage "q{i}-L{level}" has text "passage q{i} level {level}"."""
    queries = {f"q{i}": f"query number {i}" for i in range(num_queries)}
    corpus = {f"q{i}-L{lv}": f"passage q{i} level {lv}" for i in range(num_queries) for lv in levels}
    qrels = [(f"q{i}", f"q{i}-L{lv}", lv) for i in range(num_queries) for lv in levels]
    return write_beir(folder, queries, corpus, qrels)

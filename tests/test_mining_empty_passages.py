"""Neither miner writes an empty passage (no title, no text: FiQA has some) as a negative, and both mine the same
non-empty passages; the dense miner says in the log how many it left out."""

import json
import logging
from pathlib import Path

import pytest

from sycl.evaluation.encoding import encode_texts
from sycl.evaluation.search import exact_search
from sycl.mining import mine
from sycl.models import DualEncoder
from tests.test_mining import CORPUS, POSITIVES, QUERIES, mine_config, read_lines

EMPTY = ["p-empty", "p-empty2"]


@pytest.fixture
def dataset_with_empty_passages(tmp_path) -> Path:
    """test_mining's tiny dataset with two empty passages among the others (one in each dense chunk of 3)."""
    folder = tmp_path / "with_empty"
    (folder / "qrels").mkdir(parents=True)
    records = [{"_id": d, "title": "", "text": t} for d, t in CORPUS.items()]
    records.insert(1, {"_id": EMPTY[0], "title": "", "text": ""})
    records.insert(7, {"_id": EMPTY[1], "title": "  ", "text": " "})
    (folder / "corpus.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items()))
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q, d, s in POSITIVES]
    (folder / "qrels" / "train.tsv").write_text("\n".join(lines) + "\n")
    return folder


def mined(tmp_path: Path, dataset: Path, name: str, overrides: list[str]) -> dict[str, dict]:
    output = tmp_path / f"{name}.jsonl"
    mine(
        mine_config(tmp_path / name, [f"dataset={dataset}", "negatives_per_query=null", f"output={output}", *overrides])
    )
    return read_lines(output)


def test_no_miner_writes_an_empty_passage(tmp_path, dataset_with_empty_passages, tiny_model_path, caplog):
    dense = ["miner=dense", f"miner.encoder.name_or_path={tiny_model_path}", "miner.device=cpu"]
    dense.append("miner.corpus_chunk_size=3")  # an empty passage in two of the four chunks
    # Deep enough for the whole corpus: every passage the dense miner ranks is written, for some query.
    everything = f"top_k={len(CORPUS) + len(EMPTY)}"
    with caplog.at_level(logging.INFO, logger="sycl.mining.dense"):
        written = mined(tmp_path, dataset_with_empty_passages, "dense", [everything, *dense])
    dense_ids = {d for record in written.values() for d in record["corpus-ids"]}
    assert dense_ids == set(CORPUS)
    count = f"left out 2 empty passages (neither title nor text) of {len(CORPUS) + 2}; ranked the other {len(CORPUS)}"
    assert count in caplog.text
    # BM25 never ranks them (no term to share with a query): both miners mine the same passages.
    bm25 = mined(tmp_path, dataset_with_empty_passages, "bm25", [everything])
    assert {d for record in bm25.values() for d in record["corpus-ids"]} <= dense_ids

    # A shallow ranking is the exact search over the non-empty passages: top_k counts only them.
    written = mined(tmp_path, dataset_with_empty_passages, "dense_top3", ["top_k=3", *dense])
    encoder = DualEncoder.from_pretrained(tiny_model_path)
    scores, indices = exact_search(
        encode_texts(encoder, list(QUERIES.values()), "query", device="cpu", progress=False),
        encode_texts(encoder, list(CORPUS.values()), "passage", device="cpu", progress=False),
        top_k=3,
    )
    ids, positives = list(CORPUS), {q: d for q, d, _ in POSITIVES}
    for row, query_id in enumerate(QUERIES):
        expected = [(ids[i], s) for i, s in zip(indices[row].tolist(), scores[row].tolist(), strict=True)]
        expected = [(d, s) for d, s in expected if d != positives[query_id]]
        assert written[query_id]["corpus-ids"] == [d for d, _ in expected]
        assert written[query_id]["retrieval-scores"] == pytest.approx([s for _, s in expected], abs=1e-3)

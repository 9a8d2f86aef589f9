"""Bounded-memory evaluation: corpus texts read by offset, embeddings in memory-mapped store folders."""

import gzip
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sycl.data.beir_files import read_corpus
from sycl.data.text_store import OffsetTexts
from sycl.evaluation import DatasetSpec, EvaluationSettings, RetrievalEvaluator, load_split
from sycl.evaluation.encoding import encode_texts
from sycl.evaluation.search import exact_search
from sycl.evaluation.store import EMBEDDINGS_FILE, open_embeddings, write_entry
from sycl.models import DualEncoder
from tests.beir_fixtures import write_beir

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo" / "test"


def test_offset_texts_read_back_every_passage_of_a_gzipped_corpus_as_the_dict_reader_does(tmp_path):
    records = [
        {"_id": "d1", "title": "Título", "text": "naïve café ☕"},
        {"_id": "d2", "title": "", "text": "plain"},
        {"_id": "d3", "title": "only a title", "text": ""},
        {"_id": "d4", "title": "", "text": ""},
    ]
    corpus = tmp_path / "corpus.jsonl.gz"
    with gzip.open(corpus, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    expected = read_corpus(corpus)
    texts = OffsetTexts.from_pairs(expected.items(), directory=tmp_path)
    assert dict(texts) == expected and list(texts) == list(expected)  # same texts, same order
    assert "d3" in texts and "d9" not in texts and len(texts) == 4
    selected = texts.texts(["d4", "d1"])
    assert list(selected) == [expected["d4"], expected["d1"]]
    assert list(selected.lengths) == [len(expected["d4"]), len(expected["d1"])]  # characters, not bytes
    assert not list(tmp_path.glob("tmp*"))  # the spill file has no name: nothing to clean up after a crash


def test_load_split_keeps_corpus_texts_on_disk_and_is_read_like_a_dict():
    split = load_split(DatasetSpec(str(DEMO), "test"), DEMO.parent)
    assert isinstance(split.corpus, OffsetTexts)
    assert dict(split.corpus) == read_corpus(DEMO / "corpus.jsonl")


def test_encoding_a_lazy_text_slice_into_a_float16_store_equals_encoding_the_list(tmp_path, tiny_model_path):
    encoder = DualEncoder.from_pretrained(tiny_model_path)
    corpus = read_corpus(DEMO / "corpus.jsonl")
    ids = list(corpus)[:37]
    in_memory = encode_texts(encoder, [corpus[i] for i in ids], "passage", batch_size=8, progress=False)
    texts = OffsetTexts.from_pairs(corpus.items()).texts(ids)

    def encode(allocate):
        return encode_texts(encoder, texts, "passage", batch_size=8, progress=False, allocate=allocate)

    stored = write_entry(tmp_path / "entry", ids, "float16", encode)
    assert np.load(tmp_path / "entry" / EMBEDDINGS_FILE, mmap_mode="r").dtype == np.float16
    assert torch.equal(stored.float(), in_memory.half().float())  # each value rounded once, nothing else differs
    assert json.loads((tmp_path / "entry" / "ids.json").read_text()) == ids


def test_a_failed_encode_leaves_no_entry_and_a_killed_one_is_cleaned_by_the_next_write(tmp_path):
    def fail(allocate):
        allocate(3, 2)[0] = 1.0
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_entry(tmp_path / "entry", ["a", "b", "c"], "float32", fail)
    assert not list(tmp_path.iterdir())

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname().replace("-", "_")
    killed = tmp_path / f"entry.partial-{host}-{gone.stdout.strip()}-0"  # what a SIGKILLed run leaves
    running = tmp_path / f"entry.partial-{host}-{os.getpid()}-1"  # another run writing the same entry right now
    for partial in (killed, running):
        partial.mkdir()
    stored = write_entry(tmp_path / "entry", ["a"], "float32", lambda allocate: allocate(1, 2).fill_(0.5))
    assert stored.tolist() == [[0.5, 0.5]]
    assert not killed.exists() and running.exists()
    assert open_embeddings(tmp_path / "entry").tolist() == [[0.5, 0.5]]


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_exact_search_over_a_memory_mapped_store_equals_search_in_memory(tmp_path, dtype):
    generator = torch.Generator().manual_seed(0)
    corpus, queries = torch.randn(500, 16, generator=generator), torch.randn(7, 16, generator=generator)
    stored = write_entry(tmp_path / "e", [str(i) for i in range(500)], dtype, lambda a: a(500, 16).copy_(corpus))
    in_memory = corpus.to(getattr(torch, dtype)).float()
    for got, expected in zip(
        exact_search(queries, stored, 10, corpus_chunk_size=64), exact_search(queries, in_memory, 10), strict=True
    ):
        assert torch.equal(got, expected)


def test_a_float16_store_ranks_the_demo_as_float32_does_to_three_decimals(tmp_path, tiny_model_path):
    split = load_split(DatasetSpec(str(DEMO), "test"), DEMO.parent)
    encoder = DualEncoder.from_pretrained(tiny_model_path)
    full = RetrievalEvaluator(EvaluationSettings(progress=False)).evaluate(encoder, split)[0]
    half_settings = EvaluationSettings(progress=False, embedding_dtype="float16", cache_dir=str(tmp_path / "cache"))
    half = RetrievalEvaluator(half_settings).evaluate(encoder, split)[0]
    again = RetrievalEvaluator(half_settings).evaluate(encoder, split)[0]  # from the cache this time
    assert half == again
    assert half == pytest.approx(full, abs=1e-3)
    with pytest.raises(ValueError, match="embedding_dtype"):
        EvaluationSettings(embedding_dtype="bfloat16")


def test_a_sharded_process_spills_only_its_slice_and_the_passages_that_are_queries(tmp_path):
    corpus = {f"d{i}": f"passage number {i}" for i in range(10)} | {"d10": ""}
    queries = {"d7": "passage number 7", "q1": "another query"}  # d7 is a query too (ArguAna, Quora)
    write_beir(tmp_path / "c", queries, corpus, [("d7", "d1", 1), ("q1", "d2", 1)], split="test")
    whole = load_split(DatasetSpec(str(tmp_path / "c"), "test"), tmp_path)
    mine = load_split(DatasetSpec(str(tmp_path / "c"), "test"), tmp_path, keep_text=lambda row: row % 3 == 1)
    assert list(mine.corpus) == list(whole.corpus)  # every id, in file order: the rows of every slice agree
    assert mine.checks == whole.checks  # empty passages counted over the whole corpus
    held = {passage_id for row, passage_id in enumerate(mine.corpus) if row % 3 == 1} | {"d7"}
    for passage_id in mine.corpus:
        if passage_id in held:
            assert mine.corpus[passage_id] == whole.corpus[passage_id]
        else:
            with pytest.raises(LookupError, match="not held by this process"):
                mine.corpus[passage_id]
    spilled = os.fstat(mine.corpus._spill.fileno()).st_size
    assert spilled == sum(len(whole.corpus[passage_id].encode()) for passage_id in held)

"""An id repeated inside one file: with other content an error naming both lines, else read once and counted."""

import json
import logging

import pytest

from sycl.data import DataFormatError, SourceSpec, load_sources
from sycl.data.beir_files import iter_qrels, read_corpus, read_qrels, read_queries
from sycl.evaluation import DatasetSpec, load_split
from sycl.mining import iter_corpus_chunks
from tests.beir_fixtures import write_beir


def jsonl(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def test_a_corpus_id_repeated_with_other_text_names_both_lines(tmp_path):
    path = jsonl(
        tmp_path / "corpus.jsonl",
        [{"_id": "d1", "text": "Eiffel Tower"}, {"_id": "d2", "text": "x"}, {"_id": "d1", "text": "photosynthesis"}],
    )
    message = r"corpus\.jsonl, line 3, field 'text': corpus id 'd1' was already read on line 1 with a different title"
    with pytest.raises(DataFormatError, match=message) as error:
        read_corpus(path)
    assert error.value.line == 3
    with pytest.raises(DataFormatError, match="line 3"):  # mining streams the same reader
        list(iter_corpus_chunks(path, 2))
    assert read_corpus(path, keep_ids={"d2"}) == {"d2": "x"}  # an unused id cannot change a result


def test_a_title_change_is_a_conflict_too(tmp_path):
    path = jsonl(tmp_path / "corpus.jsonl", [{"_id": "d1", "title": "A", "text": "t"}, {"_id": "d1", "text": "t"}])
    with pytest.raises(DataFormatError, match=r"line 2, field 'text': corpus id 'd1' was already read on line 1"):
        read_corpus(path)


def test_a_query_id_repeated_with_other_text_names_both_lines(tmp_path):
    path = jsonl(
        tmp_path / "queries.jsonl", [{"_id": "q1", "text": "a"}, {"_id": "q2", "text": "b"}, {"_id": "q2", "text": "c"}]
    )
    message = r"queries\.jsonl, line 3, field 'text': query id 'q2' was already read on line 2 with a different text"
    with pytest.raises(DataFormatError, match=message):
        read_queries(path)


def test_a_qrels_pair_repeated_with_another_score_names_both_lines(tmp_path):
    path = tmp_path / "test.tsv"
    path.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq1\td3\t0\nq2\td2\t0\n")
    message = (
        r"test\.tsv, line 5, field 'score': \(query-id, corpus-id\) pair \('q2', 'd2'\) was already read on line 3"
    )
    with pytest.raises(DataFormatError, match=message):
        read_qrels(path)
    grouped = jsonl(tmp_path / "negatives.jsonl", [{"query-id": "q1", "corpus-ids": ["d1", "d1"], "scores": [0, 1]}])
    with pytest.raises(DataFormatError, match=r"negatives\.jsonl, line 1, field 'scores'"):
        list(iter_qrels(grouped))


def test_exact_repeats_are_read_once_and_counted_in_a_warning(tmp_path, caplog):
    write_beir(tmp_path / "d", {"q1": "a query"}, {"d1": "text"}, [("q1", "d1", 1)], split="test")
    folder = tmp_path / "d"
    for name in ("corpus.jsonl", "queries.jsonl"):
        (folder / name).write_text((folder / name).read_text() * 3)
    qrels = folder / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text() + "q1\td1\t1.0\n")  # the same score written differently
    with caplog.at_level(logging.WARNING):
        split = load_split(DatasetSpec(str(folder)), tmp_path)
    assert split.queries == {"q1": "a query"} and split.corpus == {"d1": "text"} and split.qrels == {"q1": {"d1": 1}}
    assert "corpus.jsonl: 2 corpus ids repeated unchanged; read once" in caplog.text
    assert "queries.jsonl: 2 query ids repeated unchanged; read once" in caplog.text
    assert "test.tsv: 1 (query-id, corpus-id) pair repeated unchanged; read once" in caplog.text


def test_training_sources_get_the_same_check(tmp_path):
    source = write_beir(tmp_path / "d", {"q1": "a query"}, {"d1": "text"}, [("q1", "d1", 1)])
    with open(source["corpus"], "a") as handle:
        handle.write(json.dumps({"_id": "d1", "title": "", "text": "another text"}) + "\n")
    with pytest.raises(DataFormatError, match=r"corpus\.jsonl, line 2, field 'text': corpus id 'd1' was already"):
        load_sources([SourceSpec(**source)])

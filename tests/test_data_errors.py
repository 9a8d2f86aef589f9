"""Bad input fails before training with one error naming file, line and field."""

import json
from pathlib import Path

import pytest

from sycl.data import DataFormatError, SourceSpec, load_sources
from tests.beir_fixtures import graded_source, write_beir


def load(source: dict):
    return load_sources([SourceSpec(**source)])


def test_missing_file_is_named(tmp_path):
    source = graded_source(tmp_path / "d")
    source["corpus"] = str(tmp_path / "nowhere.jsonl")
    with pytest.raises(DataFormatError, match=r"nowhere\.jsonl: file not found"):
        load(source)


def test_malformed_jsonl_line_is_located(tmp_path):
    source = graded_source(tmp_path / "d")
    with open(source["corpus"], "a") as f:
        f.write('{"_id": "broken", "text": \n')
    with pytest.raises(DataFormatError, match=r"corpus\.jsonl, line 13: not valid JSON") as error:
        load(source)
    assert error.value.line == 13


def test_empty_query_text_names_the_field(tmp_path):
    source = write_beir(tmp_path / "d", {"q1": "   "}, {"d1": "text"}, [("q1", "d1", 1)])
    with pytest.raises(DataFormatError, match=r"queries\.jsonl, line 1, field 'text': is empty"):
        load(source)


def test_qrels_naming_an_unknown_query_points_at_its_line(tmp_path):
    source = write_beir(tmp_path / "d", {"q1": "a query"}, {"d1": "text"}, [("q1", "d1", 1), ("q9", "d1", 1)])
    with pytest.raises(DataFormatError, match=r"train\.tsv, line 3, field 'query-id': 'q9' is not in .*queries\.jsonl"):
        load(source)


def test_qrels_naming_an_unknown_passage_points_at_its_line(tmp_path):
    source = write_beir(tmp_path / "d", {"q1": "a query"}, {"d1": "text"}, [("q1", "d1", 1), ("q1", "d7", 0)])
    with pytest.raises(DataFormatError, match=r"train\.tsv, line 3, field 'corpus-id': 'd7' is not in .*corpus\.jsonl"):
        load(source)


def test_non_numeric_score(tmp_path):
    source = write_beir(tmp_path / "d", {"q1": "a query"}, {"d1": "text"}, [("q1", "d1", "high")])
    with pytest.raises(DataFormatError, match=r"train\.tsv, line 2, field 'score': score must be a number, got 'high'"):
        load(source)


def test_qrels_without_header_read_as_with_it_and_a_two_column_line_is_located(tmp_path):
    source = graded_source(tmp_path / "d")
    path = Path(source["qrels"])
    with_header = load(source).candidates
    path.write_text("\n".join(path.read_text().splitlines()[1:]) + "\n")
    assert load(source).candidates == with_header
    path.write_text("q0\tq0-L3\t3\nq0\tq0-L2\n")
    with pytest.raises(DataFormatError, match=r"train\.tsv, line 2: expected 3 columns \(query-id, corpus-id, score\)"):
        load(source)


def test_grouped_jsonl_qrels_are_read_and_checked(tmp_path):
    source = graded_source(tmp_path / "d", num_queries=1)
    grouped = tmp_path / "negatives.jsonl"
    grouped.write_text(json.dumps({"query-id": "q0", "corpus-ids": ["q0-L1", "q0-L0"], "scores": [1, 0]}) + "\n")
    pool = load({**source, "qrels": str(grouped)})
    assert sorted(label for _, label in pool.candidates["q0"][0]) == [0.0, 1.0]
    grouped.write_text(json.dumps({"query-id": "q0", "corpus-ids": ["q0-L1"], "scores": [1, 2]}) + "\n")
    with pytest.raises(DataFormatError, match=r"negatives\.jsonl, line 1, field 'scores'"):
        load({**source, "qrels": str(grouped)})


def test_conflicting_source_options_are_rejected():
    with pytest.raises(ValueError, match="group_top_k or group_random_k"):
        SourceSpec(corpus="c", queries="q", qrels="r", group_top_k=1, group_random_k=1)

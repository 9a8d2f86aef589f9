"""Every standard file layout reads into what its BEIR twin reads into; every layout's errors name file and line."""

import gzip
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import pytrec_eval

from sycl.data import DataFormatError, MultiLevelDataModule, SourceSpec, load_sources
from sycl.data.beir_files import read_corpus, read_qrels, read_queries
from sycl.data.layout import dataset_files
from sycl.evaluation.metrics import TREC_MEASURES
from sycl.evaluation.run import evaluate
from sycl.models.tokenization import QueryPassageTokenizer
from tests.beir_fixtures import graded_source
from tests.conftest import compose_config

QRELS = {"q1": {"e3": 3.0, "e1": 1.0}, "q2": {"f3": 3.0, "f0": 0.0}}
PAIRS = [(q, d, int(s)) for q, judged in QRELS.items() for d, s in judged.items()]
QRELS_LAYOUTS = {
    "beir.tsv": "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in PAIRS),
    "headerless.tsv": "".join(f"{q}\t{d}\t{s}\n" for q, d, s in PAIRS),
    "other_header.tsv": "qid\tdocid\trel\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in PAIRS),
    "anserini.txt": "".join(f"{q} Q0 {d} {s}\n" for q, d, s in PAIRS),
    "msmarco_qrels.tsv": "".join(f"{q}\t0\t{d}\t{s}\n" for q, d, s in PAIRS),
    "nist.qrels": "".join(f"{q}  0  {d}  {s}\n" for q, d, s in PAIRS),
    "ours.jsonl": "".join(
        json.dumps({"query-id": q, "corpus-ids": list(j), "scores": list(j.values())}) + "\n" for q, j in QRELS.items()
    ),
    "trove.jsonl": "".join(
        json.dumps({"qid": q, "docid": list(j), "score": [int(s) for s in j.values()]}) + "\n" for q, j in QRELS.items()
    ),
    "mteb.jsonl": "".join(json.dumps({"query-id": q, "corpus-id": d, "score": s}) + "\n" for q, d, s in PAIRS),
}
PASSAGES = {
    "e3": ("Eggs", "Boil an egg for nine minutes."),
    "e1": ("", "Eggs are a source of protein."),
    "7": ("", "x"),
}
BEIR_CORPUS = {"e3": "Eggs. Boil an egg for nine minutes.", "e1": "Eggs are a source of protein.", "7": "x"}
UNTITLED_CORPUS = {**BEIR_CORPUS, "e3": "Boil an egg for nine minutes."}
CORPUS_LAYOUTS = {
    "beir.jsonl": (
        "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, (t, x) in PASSAGES.items()),
        BEIR_CORPUS,
    ),
    "numeric_ids.jsonl": (
        "".join(
            json.dumps({"docid": int(i) if i.isdigit() else i, "title": t, "text": x}) + "\n"
            for i, (t, x) in PASSAGES.items()
        ),
        BEIR_CORPUS,
    ),
    "pyserini.jsonl": (
        "".join(json.dumps({"id": i, "contents": x}) + "\n" for i, (_, x) in PASSAGES.items()),
        UNTITLED_CORPUS,
    ),
    "collection.tsv": ("".join(f"{i}\t{x}\n" for i, (_, x) in PASSAGES.items()), UNTITLED_CORPUS),
    "dpr.tsv": ("id\ttext\ttitle\n" + "".join(f"{i}\t{x}\t{t}\n" for i, (t, x) in PASSAGES.items()), BEIR_CORPUS),
}
QUERIES = {"q1": "how long to boil an egg", "1048585": "what is paula deen's brother"}
QUERY_LAYOUTS = {
    "beir.jsonl": "".join(json.dumps({"_id": q, "text": t, "metadata": {}}) + "\n" for q, t in QUERIES.items()),
    "tevatron.jsonl": "".join(json.dumps({"query_id": q, "query": t}) + "\n" for q, t in QUERIES.items()),
    "queries.train.tsv": "".join(f"{q}\t{t}\n" for q, t in QUERIES.items()),
    "with_header.tsv": "qid\tquery\n" + "".join(f"{q}\t{t}\n" for q, t in QUERIES.items()),
}


def write(path: Path, text: str | bytes, gz: bool = False) -> Path:
    """Write ``text`` to ``path`` (gzipped, with .gz appended, when ``gz``); returns the path written."""
    data = text.encode() if isinstance(text, str) else text
    path.parent.mkdir(parents=True, exist_ok=True)
    path = path.with_name(path.name + ".gz") if gz else path
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("name", list(QRELS_LAYOUTS))
def test_every_qrels_layout_reads_as_beir_tsv(tmp_path, name, gz):
    assert read_qrels(write(tmp_path / name, QRELS_LAYOUTS[name], gz)) == QRELS


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("name", list(CORPUS_LAYOUTS))
def test_every_corpus_layout_reads_as_beir_jsonl(tmp_path, name, gz):
    text, expected = CORPUS_LAYOUTS[name]
    assert read_corpus(write(tmp_path / name, text, gz)) == expected


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("name", list(QUERY_LAYOUTS))
def test_every_queries_layout_reads_as_beir_jsonl(tmp_path, name, gz):
    assert read_queries(write(tmp_path / name, QUERY_LAYOUTS[name], gz)) == QUERIES


def test_layout_comes_from_the_first_line_when_the_name_says_nothing(tmp_path):
    assert read_qrels(write(tmp_path / "qrels", QRELS_LAYOUTS["trove.jsonl"])) == QRELS
    assert read_qrels(write(tmp_path / "judgements", QRELS_LAYOUTS["anserini.txt"])) == QRELS
    gzipped_despite_its_name = write(tmp_path / "corpus.jsonl", gzip.compress(CORPUS_LAYOUTS["beir.jsonl"][0].encode()))
    assert read_corpus(gzipped_despite_its_name) == BEIR_CORPUS


def test_only_line_1_can_be_a_header(tmp_path):
    with pytest.raises(DataFormatError, match=r"q\.tsv, line 2, field 'score': score must be a number, got 'score'"):
        read_qrels(write(tmp_path / "q.tsv", "q1\td1\t1\nquery-id\tcorpus-id\tscore\n"))
    # A headerless file whose first query id is a number is not mistaken for one with a header.
    assert read_qrels(write(tmp_path / "n.tsv", "1\t2\t1\n3\t4\t0\n")) == {"1": {"2": 1.0}, "3": {"4": 0.0}}


BAD_FILES = [
    ("qrels.trec", "q1 0 d1 1\nq1 d2 1\n", read_qrels, r"qrels\.trec, line 2: expected 4 columns \(TREC qrels"),
    (
        "qrels.trec",
        "q1 0 d1 1\nq1 0 d2 1.5\n",
        read_qrels,
        r"qrels\.trec, line 2, field 'relevance': TREC relevance must be an integer, got '1\.5'",
    ),
    ("qrels.tsv", "q1\td1\n", read_qrels, r"qrels\.tsv, line 1: expected 3 columns .* or 4 .*, got 2"),
    ("qrels.tsv", "q1\td1\t1\nq1\t\t1\n", read_qrels, r"qrels\.tsv, line 2, field 'corpus-id': is empty"),
    (
        "trove.jsonl",
        json.dumps({"qid": "q1", "docid": ["d1", "d2"], "score": [1]}),
        read_qrels,
        r"trove\.jsonl, line 1, field 'score': must be a list of numbers as long as 'docid' \(2 ids\), got 1 scores",
    ),
    (
        "trove.jsonl",
        '{"qid": "q1", "docid": ["d1"], "score": [1]}\n{"qid": "q2", "docid": ["d1"]}\n',
        read_qrels,
        r"trove\.jsonl, line 2, field 'score': missing",
    ),
    (
        "grouped.jsonl",
        '{"query-id": "q1", "corpus-ids": ["d1"]}\n',
        read_qrels,
        r"grouped\.jsonl, line 1, field 'scores': missing: no score field, expected one of 'scores', 'score'",
    ),
    ("qrels.tsv.gz", "q1\td1\t1\n", read_qrels, r"qrels\.tsv\.gz: is named \.gz but is not gzip-compressed"),
    (
        "qrels.tsv.gz",
        gzip.compress(b"q1\td1\t1\n" * 50)[:-12],
        read_qrels,
        r"qrels\.tsv\.gz, line \d+: cannot be read past line \d+",
    ),
    (
        "collection.tsv",
        "1\tone\n2\ttwo\tthree\n",
        read_corpus,
        r"collection\.tsv, line 2: expected 2 tab-separated columns \(id, text\), got 3",
    ),
    (
        "corpus.jsonl",
        '{"title": "t", "text": "x"}\n',
        read_corpus,
        r"corpus\.jsonl, line 1, field '_id': missing: no id field, expected one of '_id', 'id'",
    ),
    (
        "corpus.jsonl",
        '{"id": "1", "contents": "x"}\n{"_id": "2", "contents": "y"}\n',
        read_corpus,
        r"corpus\.jsonl, line 2, field 'id': missing",
    ),
    (
        "corpus.jsonl",
        '{"_id": 1.5, "text": "x"}\n',
        read_corpus,
        r"corpus\.jsonl, line 1, field '_id': an id must be a string or an integer, got float",
    ),
    ("queries.tsv", "q1\tfine\nq2\t \n", read_queries, r"queries\.tsv, line 2, field 'text': is empty"),
    ("queries.jsonl", b'{"_id": "q1", "text": "caf\xe9"}\n', read_queries, r"queries\.jsonl, line 1: is not UTF-8"),
]


@pytest.mark.parametrize(
    "name,content,reader,message", BAD_FILES, ids=[f"{i}-{case[0]}" for i, case in enumerate(BAD_FILES)]
)
def test_each_layout_names_file_line_and_field_of_a_bad_row(tmp_path, name, content, reader, message):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataFormatError, match=message):
        reader(path)


def test_a_repeated_id_with_other_content_is_an_error_in_every_layout(tmp_path):
    with pytest.raises(DataFormatError, match=r"a\.trec, line 2, field 'relevance': .*already read on line 1"):
        read_qrels(write(tmp_path / "a.trec", "q1 0 d1 1\nq1 0 d1 2\n"))
    with pytest.raises(DataFormatError, match=r"b\.jsonl, line 1, field 'score': .*\('q1', 'd1'\) was already read"):
        read_qrels(write(tmp_path / "b.jsonl", json.dumps({"qid": "q1", "docid": ["d1", "d1"], "score": [1, 2]})))
    with pytest.raises(
        DataFormatError, match=r"c\.tsv, line 2, field 'text': corpus id '1' was already read on line 1"
    ):
        read_corpus(write(tmp_path / "c.tsv", "1\tone\n1\tanother\n"))


def test_empty_passages_are_kept_for_evaluation_and_refused_for_training(tmp_path, caplog):
    corpus = write(
        tmp_path / "corpus.jsonl",
        "".join(
            json.dumps(record) + "\n"
            for record in [
                {"_id": "fiqa", "title": "", "text": ""},  # FiQA has passages with neither
                {"_id": "scidocs", "title": "A title only", "text": " "},  # SciDocs has title-only ones
                {"_id": "normal", "title": "T", "text": "text"},
                {"_id": "exported", "title": None, "text": "text"},  # data frame exports write a missing title so
            ]
        ),
    )
    with caplog.at_level(logging.WARNING):
        assert read_corpus(corpus) == {"fiqa": "", "scidocs": "A title only", "normal": "T. text", "exported": "text"}
    assert "1 passages have only a title, which stands for their text; 1 have neither" in caplog.text
    queries = write(tmp_path / "queries.jsonl", json.dumps({"_id": "q", "text": "query"}) + "\n")
    qrels = write(tmp_path / "train.tsv", "q\tfiqa\t1\nq\tscidocs\t0\n")
    with pytest.raises(DataFormatError, match=r"corpus\.jsonl, line 1, field 'text': is empty, and the passage has no"):
        load_sources([SourceSpec(corpus=str(corpus), queries=str(queries), qrels=str(qrels))])


def test_a_folder_in_any_layout_resolves_and_a_missing_or_doubled_file_is_named(tmp_path):
    msmarco = tmp_path / "msmarco"
    for name in ("collection.tsv.gz", "queries.dev.small.tsv", "qrels.dev.small.tsv"):
        write(msmarco / name, "")
    files = dataset_files(msmarco, "dev.small")
    assert (files.corpus.name, files.queries.name, files.qrels.name) == tuple(
        ["collection.tsv.gz", "queries.dev.small.tsv", "qrels.dev.small.tsv"]
    )
    beir = tmp_path / "beir"
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/train.tsv"):
        write(beir / name, "")
    with pytest.raises(
        FileNotFoundError,
        match=r"beir: found no qrels of split 'test': .*beir/qrels/test\.tsv does not exist, nor does any of "
        r"qrels/test\.tsv\.gz, qrels/test\.txt, .*, qrels\.test\.txt\.gz$",
    ):
        dataset_files(beir, "test")
    write(msmarco / "corpus.jsonl", "")
    with pytest.raises(DataFormatError, match=r"msmarco: 2 files could be its corpus: corpus\.jsonl, collection\.tsv"):
        dataset_files(msmarco, "dev.small")


def test_trec_qrels_and_msmarco_tsv_gzipped_evaluate_to_pytrec_eval_on_the_run_file(tmp_path, tiny_model_path):
    folder = tmp_path / "marco"
    passages = {
        "e3": "Boil an egg for nine minutes for a firm yolk.",
        "e1": "Eggs are a source of protein.",
        "f3": "Paris is the capital of France.",
        "f0": "France won the world cup in 2018.",
        "x": "Bananas are yellow.",
        "blank": "",  # an empty passage: encoded and ranked like any other
    }
    write(folder / "collection.tsv", "".join(f"{i}\t{t}\n" for i, t in passages.items()), gz=True)
    write(folder / "queries.tsv", "q1\thow long to boil an egg\nq2\tcapital of france\nq3\tnot judged\n", gz=True)
    qrels = {"q1": {"e3": 3, "e1": 1}, "q2": {"f3": 3, "f0": 1}}
    trec = "".join(f"{q} 0 {d} {s}\n" for q, judged in qrels.items() for d, s in judged.items())
    write(folder / "qrels" / "test.trec", trec, gz=True)
    out = tmp_path / "out"
    cfg = compose_config("eval", out, [f"model.name_or_path={tiny_model_path}", f"datasets=[{folder}]", "split=test"])
    results = evaluate(cfg)["marco"]
    run: dict[str, dict[str, float]] = {}
    for line in (out / "runs" / "results-marco.trec").read_text().splitlines():
        query_id, _, corpus_id, _, score, _ = line.split()
        run.setdefault(query_id, {})[corpus_id] = float(score)
    assert set(run) == {"q1", "q2"} and all(len(hits) == len(passages) for hits in run.values())
    per_query = pytrec_eval.RelevanceEvaluator(qrels, set(TREC_MEASURES.values())).evaluate(run)
    for name, measure in TREC_MEASURES.items():
        assert results[name] == pytest.approx(np.mean([scores[measure] for scores in per_query.values()]), abs=1e-9)
    checks = json.loads((out / "results_checks.json").read_text())["marco"]
    assert checks["empty_passages"] == 1 and checks["unjudged_queries_skipped"] == 1


def trove_source(tmp_path: Path) -> dict:
    """The graded demo source with its qrels rewritten in Trove's grouped form, gzipped."""
    source = graded_source(tmp_path / "d", num_queries=3)
    grouped: dict[str, dict[str, int]] = {}
    for query_id, corpus_id, score in (line.split("\t") for line in Path(source["qrels"]).read_text().splitlines()[1:]):
        grouped.setdefault(query_id, {})[corpus_id] = int(score)
    lines = [json.dumps({"qid": q, "docid": list(j), "score": list(j.values())}) + "\n" for q, j in grouped.items()]
    return {**source, "qrels": str(write(tmp_path / "train_qrels.jsonl", "".join(lines), gz=True))}


def datamodule(sources: list[dict], minilm_path: str, **options) -> MultiLevelDataModule:
    from transformers import AutoTokenizer

    tokenization = QueryPassageTokenizer(AutoTokenizer.from_pretrained(minilm_path))
    module = MultiLevelDataModule(sources, group_size=4, batch_size=2, tokenization=tokenization, **options)
    module.setup("fit")
    return module


def test_a_trove_grouped_source_trains_as_its_beir_twin(tmp_path, minilm_path):
    trove = trove_source(tmp_path)
    beir = {**trove, "qrels": str(tmp_path / "d" / "qrels" / "train.tsv")}
    from_trove, from_beir = datamodule([trove], minilm_path), datamodule([beir], minilm_path)
    assert len(from_trove.train_dataset) == 3
    assert [from_trove.train_dataset[(i, 1)] for i in range(3)] == [from_beir.train_dataset[(i, 1)] for i in range(3)]
    batch = next(iter(from_trove.train_dataloader()))
    assert batch["labels"].shape == (2, 4) and batch["labels"][:, 0].eq(3).all()


def broken_source(tmp_path: Path) -> dict:
    """Three queries; q1's level-0 passage is a bad row, q2's text is empty, one qrels score is not a number."""
    source = graded_source(tmp_path / "d", num_queries=3)
    corpus = Path(source["corpus"])
    corpus.write_text(corpus.read_text().replace('"passage q1 level 0"', '""') + '{"_id": "broken", "text": \n')
    queries = Path(source["queries"])
    queries.write_text(queries.read_text().replace('"query number 2"', '""'))
    with open(source["qrels"], "a") as qrels:
        qrels.write("q0\tq0-L1\tthree\n")
    return source


def test_bad_rows_stop_training_by_default_and_are_skipped_and_counted_on_request(tmp_path, minilm_path, caplog):
    source = broken_source(tmp_path)
    with pytest.raises(DataFormatError, match=r"train\.tsv, line 14, field 'score': score must be a number"):
        load_sources([SourceSpec(**source)])
    with caplog.at_level(logging.WARNING):
        module = datamodule([source], minilm_path, bad_rows="skip")
    pool = module.train_dataset.sampler.pool
    assert pool.query_ids == ["q0", "q1"]
    assert [len(owned[0]) for owned in map(pool.candidates.get, pool.query_ids)] == [4, 3]
    assert "train.tsv: skipped 1 malformed rows (bad_rows=skip)" in caplog.text
    assert (
        "corpus.jsonl: skipped 2 malformed rows" in caplog.text and "queries.jsonl: skipped 1 malformed" in caplog.text
    )
    assert "dropped 5 of its pairs" in caplog.text  # q1-L0, and q2's four
    with pytest.raises(ValueError, match=r"data\.bad_rows='drop' is not one of \('error', 'skip'\)"):
        load_sources([SourceSpec(**source)], bad_rows="drop")

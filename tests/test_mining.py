"""Hard-negative mining: BM25 through bm25s exactly, positives never returned, seeded sampling, atomic output."""

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import bm25s
import pytest

from sycl.data.beir_files import iter_qrels, read_corpus, read_qrels
from sycl.evaluation.encoding import encode_texts
from sycl.evaluation.search import exact_search
from sycl.mining import BM25Miner, NegativesWriter, iter_corpus, iter_corpus_chunks, mine, select_negatives
from sycl.mining.negatives import Negative
from sycl.models import DualEncoder
from tests.beir_fixtures import write_beir
from tests.conftest import CONF_DIR, compose_config

ROOT = Path(CONF_DIR).parent
DEMO_REAL = ROOT / "data" / "demo" / "real"

QUERIES = {"q1": "symptoms of iron deficiency", "q2": "how long does the flu last", "q3": "solar panel cost"}
CORPUS = {
    "p-iron": "Iron deficiency symptoms include fatigue, pale skin and shortness of breath.",
    "p-iron2": "Iron deficiency in plants shows as yellow leaves with green veins.",
    "p-iron3": "Cast iron pans need seasoning; symptoms of rust mean the oil layer wore off.",
    "p-flu": "How long does the flu last? The flu lasts about a week; the cough can last longer.",
    "p-flu2": "How long does a cold last? Most colds clear up within ten days.",
    "p-flu3": "Flu vaccines are updated every year for the strains expected to circulate.",
    "p-last": "The last train leaves at midnight; how long the trip takes depends on stops.",
    "p-solar": "Solar panel cost has fallen; a home system costs a few thousand dollars.",
    "p-unrelated": "Knitting a scarf takes an afternoon with thick wool and big needles.",
    "p-unrelated2": "Chess openings reward controlling the centre early.",
}
# p-iron and p-flu are labelled positives and rank first for their queries: mining must drop them.
POSITIVES = [("q1", "p-iron", 1), ("q2", "p-flu", 1), ("q3", "p-solar", 1)]


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    write_beir(tmp_path / "tiny", QUERIES, CORPUS, POSITIVES)
    return tmp_path / "tiny"


def mine_config(tmp_path: Path, overrides: list[str]):
    return compose_config("mine", tmp_path / "run", ["progress=false", *overrides])


def read_lines(path: Path) -> dict[str, dict]:
    return {record["query-id"]: record for record in map(json.loads, path.read_text().splitlines())}


def direct_bm25s(top_k: int) -> dict[str, list[tuple[str, float]]]:
    """The same ranking straight from bm25s, with the miner's documented settings (k1=0.9, b=0.4, Lucene)."""
    ids, texts = list(CORPUS), list(CORPUS.values())
    retriever = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
    retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
    documents, scores = retriever.retrieve(
        bm25s.tokenize(list(QUERIES.values()), stopwords="en", show_progress=False), k=top_k, show_progress=False
    )
    return {
        query_id: [(ids[d], float(s)) for d, s in zip(documents[row], scores[row], strict=True)]
        for row, query_id in enumerate(QUERIES)
    }


@pytest.mark.parametrize("top_k", [2, 6])
def test_bm25_mining_equals_a_direct_bm25s_call_minus_positives_and_non_matches(tmp_path, tiny_dataset, top_k):
    output = tmp_path / "negatives.jsonl"
    cfg = mine_config(
        tmp_path,
        [f"dataset={tiny_dataset}", f"top_k={top_k}", "negatives_per_query=null", f"output={output}"]
        + ["miner.query_batch_size=2"],  # two batches for three queries
    )
    summary = mine(cfg)
    written = read_lines(output)
    direct = direct_bm25s(top_k)
    positives = {q: d for q, d, _ in POSITIVES}
    for query_id, ranked in direct.items():
        assert ranked[0][0] == positives[query_id]  # the positive is BM25's first hit, so dropping it is tested
        expected = [(doc, score, rank) for rank, (doc, score) in enumerate(ranked, 1) if doc != positives[query_id]]
        expected = [hit for hit in expected if hit[1] > 0]  # bm25s pads short rankings with score-0 passages
        if not expected:  # q3: only its positive shares a term with it
            assert query_id not in written
            continue
        assert written[query_id]["corpus-ids"] == [doc for doc, _, _ in expected]
        assert written[query_id]["retrieval-scores"] == pytest.approx([s for _, s, _ in expected], abs=1e-4)
        assert written[query_id]["ranks"] == [rank for _, _, rank in expected]
        assert written[query_id]["scores"] == [0] * len(expected)
    assert "p-unrelated" not in {d for record in written.values() for d in record["corpus-ids"]}
    assert sorted(written) == ["q1", "q2"]
    assert summary["positives_retrieved"] == 3 and summary["queries_without_negatives"] == 1


def test_a_stemmer_applies_to_passages_and_queries_alike(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in [("1", "cat food"), ("2", "dog")]))

    def stem(words: list[str]) -> list[str]:
        return [w.removesuffix("s") for w in words]

    ranked = dict(BM25Miner(stemmer=stem, progress=False).rank(corpus, {"q": "dogs"}, top_k=2))
    assert [doc for doc, _ in ranked["q"]] == ["2"]
    assert dict(BM25Miner(progress=False).rank(corpus, {"q": "dogs"}, top_k=2))["q"] == []


def test_mined_file_is_a_negatives_source_without_any_labelled_positive(tmp_path, tiny_dataset):
    output = tmp_path / "negatives.jsonl"
    mine(mine_config(tmp_path, [f"dataset={tiny_dataset}", "top_k=10", "negatives_per_query=2", f"output={output}"]))
    pairs = list(iter_qrels(output))
    assert pairs and {score for *_, score in pairs} == {0.0}
    assert not {(q, d) for _, q, d, _ in pairs} & {(q, d) for q, d, _ in POSITIVES}
    assert all(len(record["corpus-ids"]) <= 2 for record in read_lines(output).values())


def test_the_shipped_demo_negatives_are_what_the_documented_command_writes(tmp_path):
    shipped = DEMO_REAL / "qrels" / "bm25_negatives.jsonl"
    output = tmp_path / "bm25_negatives.jsonl"
    # The README's command: python mine.py dataset=data/demo/real top_k=10 negatives_per_query=null
    #   output=data/demo/real/qrels/bm25_negatives.jsonl overwrite=true
    mine(mine_config(tmp_path, [f"dataset={DEMO_REAL}", "top_k=10", "negatives_per_query=null", f"output={output}"]))
    assert output.read_bytes() == shipped.read_bytes()
    positives = read_qrels(DEMO_REAL / "qrels" / "train.tsv")
    records = read_lines(shipped)
    assert set(records) == set(positives)
    for query_id, record in records.items():
        assert len(record["corpus-ids"]) >= 2  # enough for group_random_k=2
        assert not set(record["corpus-ids"]) & set(positives[query_id])


def test_sampled_negatives_are_a_seeded_uniform_draw_in_rank_order():
    ranked = [(f"d{i}", 100.0 - i) for i in range(25)]
    positives = {"d0", "d7"}
    picks = [select_negatives(ranked, positives, 2, random.Random(f"42/q{seed}")) for seed in range(4000)]
    assert all(n.corpus_id not in positives for pick in picks for n in pick)
    assert all(pick[0].rank < pick[1].rank for pick in picks)
    counts = {}
    for pick in picks:
        for negative in pick:
            counts[negative.rank] = counts.get(negative.rank, 0) + 1
    assert sorted(counts) == [r for r in range(1, 26) if r not in (1, 8)]  # every depth is reachable
    expected = 2 * 4000 / 23
    assert all(0.8 * expected < c < 1.2 * expected for c in counts.values()), counts  # not biased to the top
    again = select_negatives(ranked, positives, 2, random.Random("42/q7"))
    assert again == picks[7]


def test_select_negatives_keeps_everything_but_positives_and_repeats_when_no_count():
    ranked = [("a", 3.0), ("pos", 2.5), ("b", 2.0), ("a", 1.0), ("c", 0.5)]
    assert select_negatives(ranked, {"pos"}) == [Negative("a", 3.0, 1), Negative("b", 2.0, 3), Negative("c", 0.5, 5)]
    with pytest.raises(ValueError, match="negatives_per_query"):
        select_negatives(ranked, set(), 0)


def test_the_output_appears_only_when_mining_finished(tmp_path):
    path = tmp_path / "negatives.jsonl"
    path.write_text("previous file\n")
    with pytest.raises(RuntimeError), NegativesWriter(path) as writer:
        writer.write("q1", [Negative("d1", 1.0, 1)])
        raise RuntimeError("killed mid-way")
    assert path.read_text() == "previous file\n"
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    with NegativesWriter(path) as writer:
        writer.write("q1", [Negative("d1", 1.5, 2)])
    assert read_lines(path)["q1"]["corpus-ids"] == ["d1"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # readable like any file open() creates


def test_the_streaming_corpus_reader_chunks_in_file_order_and_keeps_only_the_named_ids():
    corpus = read_corpus(DEMO_REAL / "corpus.jsonl")
    first_ids = [json.loads(line)["_id"] for line in (DEMO_REAL / "corpus.jsonl").read_text().splitlines()[:3]]
    assert [corpus_id for corpus_id, _ in iter_corpus(DEMO_REAL / "corpus.jsonl")][:3] == first_ids
    kept = set(first_ids[1:])
    assert read_corpus(DEMO_REAL / "corpus.jsonl", keep_ids=kept) == {i: corpus[i] for i in kept}
    chunks = list(iter_corpus_chunks(DEMO_REAL / "corpus.jsonl", 100))
    assert [len(ids) for ids, _ in chunks] == [100, 100, 100, 80]


def test_titles_are_joined_as_in_read_corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text(json.dumps({"_id": "1", "title": "Iron", "text": "is a metal."}) + "\n")
    assert list(iter_corpus(path)) == [("1", "Iron. is a metal.")] and read_corpus(path) == {"1": "Iron. is a metal."}


def test_dense_mining_in_chunks_equals_exact_search_over_the_whole_corpus(tmp_path, tiny_dataset, tiny_model_path):
    output = tmp_path / "dense.jsonl"
    overrides = [
        f"dataset={tiny_dataset}",
        "top_k=5",
        "negatives_per_query=null",
        f"output={output}",
        "miner=dense",
        f"miner.encoder.name_or_path={tiny_model_path}",
        "miner.corpus_chunk_size=3",  # four chunks: the running top-k is merged across them
        "miner.device=cpu",
    ]
    mine(mine_config(tmp_path, overrides))
    encoder = DualEncoder.from_pretrained(tiny_model_path)
    scores, indices = exact_search(
        encode_texts(encoder, list(QUERIES.values()), "query", device="cpu", progress=False),
        encode_texts(encoder, list(CORPUS.values()), "passage", device="cpu", progress=False),
        top_k=5,
    )
    ids, positives, written = list(CORPUS), {q: d for q, d, _ in POSITIVES}, read_lines(output)
    for row, query_id in enumerate(QUERIES):
        expected = [(ids[i], s) for i, s in zip(indices[row].tolist(), scores[row].tolist(), strict=True)]
        expected = [(d, s) for d, s in expected if d != positives[query_id]]
        assert written[query_id]["corpus-ids"] == [d for d, _ in expected]
        assert written[query_id]["retrieval-scores"] == pytest.approx([s for _, s in expected], abs=1e-3)


def test_a_missing_dataset_offline_says_where_to_put_it(tmp_path):
    cfg = mine_config(tmp_path, ["dataset=no-such-dataset", "download=false", f"paths.beir_dir={tmp_path}"])
    with pytest.raises(FileNotFoundError, match=f"place a BEIR-layout folder .* at {tmp_path}/no-such-dataset"):
        mine(cfg)


def test_an_existing_output_is_replaced_only_with_overwrite_and_refused_before_any_work(tmp_path, tiny_dataset):
    output = tmp_path / "negatives.jsonl"
    output.write_text("previous\n")
    for dataset in (tiny_dataset, "no-such-dataset"):  # refused before the dataset is even looked for
        cfg = mine_config(tmp_path, [f"dataset={dataset}", "download=false", f"output={output}"])
        with pytest.raises(FileExistsError, match=f"^{output} exists: add overwrite=true to replace it"):
            mine(cfg)
    assert output.read_text() == "previous\n"
    mine(mine_config(tmp_path, [f"dataset={tiny_dataset}", "top_k=5", f"output={output}", "++overwrite=true"]))
    assert set(read_lines(output)) == {"q1", "q2"}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.slow
def test_mine_py_writes_into_its_run_folder_and_into_data_only_when_told(tmp_path):
    demo = tmp_path / "real"  # a copy: the documented command runs on the shipped folder
    shutil.copytree(DEMO_REAL, demo)
    before = snapshot(demo)
    readme = [sys.executable, "mine.py", f"dataset={demo}", "top_k=10", "negatives_per_query=null", "progress=false"]

    def run(*extra: str) -> subprocess.CompletedProcess:
        env = {key: value for key, value in os.environ.items() if key != "HYDRA_FULL_ERROR"}
        return subprocess.run([*readme, *extra], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)

    finished = run(f"hydra.run.dir={tmp_path}/run")
    assert finished.returncode == 0, finished.stderr[-2000:]
    output = tmp_path / "run" / "bm25_negatives.jsonl"
    assert f"to {output}" in finished.stdout and snapshot(demo) == before
    assert output.read_bytes() == before["qrels/bm25_negatives.jsonl"]

    shipped = demo / "qrels" / "bm25_negatives.jsonl"
    shipped.write_text("edited\n")
    refused = run(f"hydra.run.dir={tmp_path}/run2", f"output={shipped}")
    assert refused.returncode == 1 and shipped.read_text() == "edited\n"
    assert refused.stderr == (
        f"mine.py: error: {shipped} exists: add overwrite=true to replace it, or choose another output=<file>\n"
    )
    replaced = run(f"hydra.run.dir={tmp_path}/run3", f"output={shipped}", "++overwrite=true")
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    assert snapshot(demo) == before

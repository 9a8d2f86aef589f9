"""Evaluation datasets in the BEIR layout: local folders, BEIR names, and beir's downloader."""

import logging
from dataclasses import dataclass
from pathlib import Path

from sycl.data.beir_files import Qrels, read_corpus, read_qrels, read_queries
from sycl.data.errors import DataFormatError

log = logging.getLogger(__name__)

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
# BEIR sets whose queries are themselves corpus documents: a retrieved copy of the query is not an answer.
SELF_HIT_DATASETS = ("arguana", "quora")


@dataclass
class DatasetSpec:
    """One evaluation target: a BEIR-layout folder (or BEIR name) and the qrels split to score."""

    path: str
    split: str = "test"
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or Path(self.path).name


@dataclass
class RetrievalSplit:
    """queries {id: text}, corpus {id: text} and graded qrels {query id: {corpus id: int}} of one split."""

    name: str
    folder: Path
    queries: dict[str, str]
    corpus: dict[str, str]
    qrels: dict[str, dict[str, int]]

    @property
    def corpus_file(self) -> Path:
        return self.folder / "corpus.jsonl"


def resolve_folder(path: str, beir_dir: str | Path, download: bool = True) -> Path:
    """A local folder as given, or ``beir_dir/<name>`` for a BEIR name, downloaded with beir when missing.

    Raises FileNotFoundError with the folder to fill when neither exists nor downloads (offline).
    """
    folder = Path(path)
    if folder.is_dir():
        return folder
    if folder.is_absolute() or path.startswith("."):
        raise FileNotFoundError(f"dataset folder {folder} does not exist")
    target = Path(beir_dir) / path
    if target.is_dir():
        return target
    if download:
        try:
            from beir import util

            top_name = path.split("/")[0]  # cqadupstack/android lives inside cqadupstack.zip
            log.info("downloading BEIR dataset %s into %s", top_name, beir_dir)
            util.download_and_unzip(BEIR_URL.format(name=top_name), str(beir_dir))
        except Exception as error:  # network errors come in many types; the message below is what helps
            log.warning("download of %s failed: %s", path, error)
        if target.is_dir():
            return target
    url = BEIR_URL.format(name=path.split("/")[0])
    raise FileNotFoundError(
        f"dataset {path!r} is not available: no folder {target} and it could not be downloaded. On a machine "
        f"with network access run `python -c \"from beir import util; util.download_and_unzip('{url}', "
        f"'{beir_dir}')\"`, or place a BEIR-layout folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) "
        f"at {target}"
    )


def load_split(spec: DatasetSpec, beir_dir: str | Path, download: bool = True) -> RetrievalSplit:
    """Read and check one split; every qrels id must resolve and labels must be whole numbers."""
    folder = resolve_folder(spec.path, beir_dir, download)
    qrels_path = folder / "qrels" / f"{spec.split}.tsv"
    raw = read_qrels(qrels_path)
    if not raw:
        raise DataFormatError(qrels_path, f"split {spec.split!r} has no judgements")
    queries = read_queries(folder / "queries.jsonl", keep_ids=set(raw))
    missing = sorted(set(raw) - set(queries))
    if missing:
        raise DataFormatError(
            qrels_path, f"{len(missing)} query ids are not in queries.jsonl, e.g. {missing[0]!r}", field="query-id"
        )
    corpus = read_corpus(folder / "corpus.jsonl")
    unknown = sorted({d for judged in raw.values() for d in judged} - set(corpus))
    if unknown:
        raise DataFormatError(
            qrels_path, f"{len(unknown)} corpus ids are not in corpus.jsonl, e.g. {unknown[0]!r}", field="corpus-id"
        )
    return RetrievalSplit(spec.label, folder, queries, corpus, integer_qrels(raw, qrels_path))


def integer_qrels(qrels: Qrels, path: Path) -> dict[str, dict[str, int]]:
    """pytrec_eval needs integer grades; refuse fractional ones instead of silently truncating them."""
    converted: dict[str, dict[str, int]] = {}
    for query_id, judged in qrels.items():
        for corpus_id, score in judged.items():
            if score != int(score):
                raise DataFormatError(
                    path,
                    f"graded metrics need whole-number labels, got {score} for ({query_id}, {corpus_id})",
                    field="score",
                )
            converted.setdefault(query_id, {})[corpus_id] = int(score)
    return converted

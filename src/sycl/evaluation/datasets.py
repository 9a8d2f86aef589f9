"""Evaluation datasets: local folders (BEIR, MS MARCO or TREC layout), BEIR names, and beir's downloader."""

import logging
from dataclasses import dataclass, field
from pathlib import Path

from sycl.data.beir_files import iter_qrels, read_corpus, read_queries
from sycl.data.errors import DataFormatError
from sycl.data.layout import corpus_file, dataset_files

log = logging.getLogger(__name__)

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"


@dataclass
class DatasetSpec:
    """One evaluation target: a dataset folder (or BEIR name) and the qrels split to score."""

    path: str
    split: str = "test"
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or Path(self.path).name


@dataclass
class RetrievalSplit:
    """queries {id: text}, corpus {id: text} and graded qrels {query id: {corpus id: int}} of one split.

    ``queries`` holds the judged queries that have a text; ``qrels`` is the file as given (see
    ``load_split``); ``checks`` counts what ``load_split`` found in the files.
    """

    name: str
    folder: Path
    queries: dict[str, str]
    corpus: dict[str, str]
    qrels: dict[str, dict[str, int]]
    checks: dict[str, int] = field(default_factory=dict)

    @property
    def corpus_file(self) -> Path:
        return corpus_file(self.folder)


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
    """Read one split and score it as trec_eval scores the qrels as given; count and log what does not resolve.

    The folder's files are found by ``sycl.data.layout.dataset_files``, in any layout the readers know.

    - A judged query with no text in the queries file cannot be retrieved: it is left out of the run, which
      trec_eval then skips (as pytrec_eval on the run file does).
    - A judged passage missing from the corpus stays in the qrels: a relevant passage that no system
      can retrieve, lowering nDCG and recall as in trec_eval (BEIR ArguAna's test qrels have one).
    - A passage with neither title nor text (FiQA has some) stays in the corpus as "", as in BEIR: it can
      be retrieved, and is counted in ``checks["empty_passages"]``. A title-only passage is its title.
    - A query without judgements in this split is neither encoded nor scored.
    Labels must be whole numbers; a split with no judgement, or no judged query with a text, is an error.
    """
    folder = resolve_folder(spec.path, beir_dir, download)
    files = dataset_files(folder, spec.split)
    qrels = integer_qrels(files.qrels)
    if not qrels:
        raise DataFormatError(files.qrels, f"split {spec.split!r} has no judgements")
    every_query = read_queries(files.queries)
    queries = {query_id: every_query[query_id] for query_id in qrels if query_id in every_query}
    if not queries:
        raise DataFormatError(
            files.qrels,
            f"none of its {len(qrels)} query ids is in {files.queries.name}: nothing to evaluate",
            field="query-id",
        )
    corpus = read_corpus(files.corpus)
    without_text = [query_id for query_id in qrels if query_id not in queries]
    unknown = [(q, d) for q, judged in qrels.items() for d in judged if d not in corpus]
    checks = {
        "judged_queries": len(qrels),
        "judged_queries_without_text": len(without_text),
        "unjudged_queries_skipped": len(every_query) - len(queries),
        "judged_pairs_not_in_corpus": len(unknown),
        "relevant_pairs_not_in_corpus": sum(qrels[q][d] > 0 for q, d in unknown),
        "empty_passages": sum(1 for text in corpus.values() if not text),
    }
    if without_text:
        log.warning(
            "%s: %d judged queries are not in %s (e.g. %r); they are not retrieved, so not scored "
            "(trec_eval skips queries missing from the run)",
            files.qrels,
            len(without_text),
            files.queries.name,
            without_text[0],
        )
    if unknown:
        log.warning(
            "%s: %d judged (query, passage) pairs name passages missing from %s (e.g. %r, %d of them "
            "relevant); they stay in the qrels, so they count as passages nothing retrieves, as in trec_eval",
            files.qrels,
            len(unknown),
            files.corpus.name,
            unknown[0][1],
            checks["relevant_pairs_not_in_corpus"],
        )
    return RetrievalSplit(spec.label, folder, queries, corpus, qrels, checks)


def integer_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Read qrels with integer grades, as pytrec_eval needs; a fractional one is refused with its line,
    never silently truncated."""
    converted: dict[str, dict[str, int]] = {}
    for line, query_id, corpus_id, score in iter_qrels(path):
        if score != int(score):
            raise DataFormatError(
                path,
                f"graded metrics need whole-number labels, got {score} for ({query_id}, {corpus_id})",
                line,
                "score",
            )
        converted.setdefault(query_id, {})[corpus_id] = int(score)
    return converted

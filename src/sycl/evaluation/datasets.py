"""Evaluation datasets: local folders (BEIR, MS MARCO or TREC layout), BEIR names, Hugging Face Hub folders and
files (``hf://`` URIs, ``sycl.hub``), and beir's downloader."""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import parse_hf_uri
from tqdm.auto import tqdm

from sycl import hub
from sycl.data.beir_files import iter_corpus, iter_qrels, read_queries
from sycl.data.errors import DataFormatError
from sycl.data.layout import DatasetFiles, corpus_file, qrels_file, queries_file
from sycl.data.text_store import OffsetTexts

log = logging.getLogger(__name__)

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
FILE_ROLES = ("corpus", "queries", "qrels")
# A folder on the Hub cannot be searched offline for the names a local one may use, so its files have the names
# that the mteb copies of BEIR and MS MARCO, and the SyCL reference's data_configs/eval_data.json, use.
HUB_FOLDER_FILES = {"corpus": "corpus.jsonl", "queries": "queries.jsonl", "qrels": "qrels/{split}.tsv"}


@dataclass
class DatasetSpec:
    """One evaluation target: a dataset folder and the qrels split to score, or its three files.

    ``path`` is a local folder, a BEIR name (looked up in, or downloaded to, the BEIR folder) or an ``hf://``
    folder URI such as ``hf://datasets/mteb/scifact@<revision>``, whose files are ``HUB_FOLDER_FILES``.
    ``corpus``, ``queries`` and ``qrels`` (each a local file or an ``hf://`` file URI) replace the folder's file of
    that role; with all three there is no folder, ``split`` is not used and ``name`` is required (it labels the
    results). Raises ValueError for a spec that names no file of some role, or a malformed ``hf://`` URI.
    """

    path: str | None = None
    split: str = "test"
    name: str | None = None
    corpus: str | None = None
    queries: str | None = None
    qrels: str | None = None

    def __post_init__(self):
        missing = [role for role in FILE_ROLES if getattr(self, role) is None]
        if self.path is None and missing:
            raise ValueError(
                f"dataset {self.name or '(no name)'}: give path (a folder) or all of corpus, queries and qrels; "
                f"{', '.join(missing)} missing"
            )
        if self.path is None and not self.name:
            raise ValueError(f"the dataset of corpus={self.corpus} needs a name: it has no folder to be named after")
        for given in (self.path, self.corpus, self.queries, self.qrels):
            if hub.is_hub_uri(given):
                parse_hf_uri(given)  # a malformed URI fails here, naming itself, not when the dataset is reached

    @property
    def label(self) -> str:
        """``name``, else the folder's name: an ``hf://`` folder's last part (``scifact`` for mteb/scifact@...)."""
        if self.name:
            return self.name
        if hub.is_hub_uri(self.path):
            parsed = parse_hf_uri(self.path)
            return (parsed.path_in_repo or parsed.id).rstrip("/").rsplit("/", 1)[-1]
        return Path(self.path).name


@dataclass
class RetrievalSplit:
    """queries {id: text}, corpus {id: text} and graded qrels {query id: {corpus id: int}} of one split.

    ``corpus`` is a read-only mapping; ``load_split`` gives an ``OffsetTexts``, whose texts stay on disk.
    ``queries`` holds the judged queries that have a text; ``qrels`` is the file as given (see
    ``load_split``); ``checks`` counts what ``load_split`` found in the files. ``corpus_file`` is the local file
    the corpus was read from (the embedding cache hashes its bytes); ``hub_files`` is {URI: commit} of the split's
    files that came from the Hub, and ``corpus_uri`` the corpus's URI when it is one of them.
    """

    name: str
    corpus_file: Path
    queries: dict[str, str]
    corpus: Mapping[str, str]
    qrels: dict[str, dict[str, int]]
    checks: dict[str, int] = field(default_factory=dict)
    hub_files: dict[str, str] = field(default_factory=dict)
    corpus_uri: str | None = None

    @property
    def corpus_source(self) -> dict[str, str] | None:
        """{"uri", "commit"} of a corpus read from the Hub, None for a local one: what a cache entry records."""
        return {"uri": self.corpus_uri, "commit": self.hub_files[self.corpus_uri]} if self.corpus_uri else None


def named_files(spec: DatasetSpec) -> dict[str, str | None]:
    """{role: file} as ``spec`` names each of corpus, queries and qrels: its own file, else its ``hf://`` folder's
    (``HUB_FOLDER_FILES``), else None, for the local folder's file that ``sycl.data.layout`` finds."""
    from_hub_folder = hub.is_hub_uri(spec.path)
    named = {}
    for role in FILE_ROLES:
        given = getattr(spec, role)
        if given is None and from_hub_folder:
            given = f"{spec.path.rstrip('/')}/{HUB_FOLDER_FILES[role].format(split=spec.split)}"
        named[role] = None if given is None else str(given)
    return named


def hub_uris(spec: DatasetSpec) -> dict[str, str]:
    """{role: URI} of the files of ``spec`` that are named by ``hf://`` URIs."""
    return {role: given for role, given in named_files(spec).items() if hub.is_hub_uri(given)}


def hub_commits(spec: DatasetSpec) -> dict[str, str]:
    """{URI: commit} of the ``hf://`` files of ``spec``, as ``split_files`` fetched them (call it first)."""
    fetched = hub.fetched_files()
    return {uri: fetched[uri] for uri in hub_uris(spec).values()}


def split_files(spec: DatasetSpec, beir_dir: str | Path, download: bool = True) -> DatasetFiles:
    """The local corpus, queries and qrels files of ``spec``'s split, every ``hf://`` one fetched into the HF cache.

    A file ``spec`` does not name is its local folder's (``resolve_folder``, then ``sycl.data.layout``, in any
    layout the readers know). ``download=False`` neither downloads a BEIR zip nor touches the Hub (a hub file
    must then be in the cache). Raises FileNotFoundError naming what is missing, ``sycl.hub.HubFileUnavailable``
    (one) naming the URI and the ``hf download`` command that fetches it.
    """
    found = {
        role: hub.local_path(given, local_only=not download)
        for role, given in named_files(spec).items()
        if given is not None
    }
    if len(found) < len(FILE_ROLES):
        folder = resolve_folder(spec.path, beir_dir, download)
        in_folder = {
            "corpus": lambda: corpus_file(folder),
            "queries": lambda: queries_file(folder, spec.split),
            "qrels": lambda: qrels_file(folder, spec.split),
        }
        found = {role: found[role] if role in found else in_folder[role]() for role in FILE_ROLES}
    for role, path in found.items():
        if not path.is_file():
            raise FileNotFoundError(f"the {role} file {path} does not exist")
    return DatasetFiles(**found)


def resolve_folder(path: str, beir_dir: str | Path, download: bool = True) -> Path:
    """A local folder as given, or ``beir_dir/<name>`` for a BEIR name, downloaded with beir when missing.

    Raises FileNotFoundError with the folder to fill when neither exists nor downloads (offline).
    """
    if hub.is_hub_uri(path):  # as a Path its "//" would fold, and beir would be asked for a zip named "hf:"
        raise ValueError(f"{path} is a Hub folder: its files are named by sycl.evaluation.datasets.named_files")
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


def load_split(
    spec: DatasetSpec,
    beir_dir: str | Path,
    download: bool = True,
    keep_text: Callable[[int], bool] | None = None,
    progress: bool = False,
) -> RetrievalSplit:
    """Read one split and score it as trec_eval scores the qrels as given; count and log what does not resolve.

    The files are found by ``split_files``: the spec's own, those of its ``hf://`` folder, or its local folder's
    (``sycl.data.layout``, in any layout the readers know). ``download=False`` downloads nothing. The corpus texts
    stay on disk (``OffsetTexts``); with ``keep_text(row)``, only those of the rows it accepts (and of passages
    whose id is a judged query's) are kept, e.g. a sharded evaluation process's slice. ``progress`` shows a bar
    while the corpus is read (MS MARCO's 8.8M passages take about a minute).

    - A judged query with no text in the queries file cannot be retrieved: it is left out of the run, which
      trec_eval then skips (as pytrec_eval on the run file does).
    - A judged passage missing from the corpus stays in the qrels: a relevant passage that no system
      can retrieve, lowering nDCG and recall as in trec_eval (BEIR ArguAna's test qrels have one).
    - A passage with neither title nor text (FiQA has some) stays in the corpus as "", as in BEIR: it can
      be retrieved, and is counted in ``checks["empty_passages"]``. A title-only passage is its title.
    - A query without judgements in this split is neither encoded nor scored.
    Labels must be whole numbers; a split with no judgement, or no judged query with a text, is an error.
    """
    files = split_files(spec, beir_dir, download)
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
    # Texts on disk, read by offset: a split of MS MARCO's 8.8M passages holds their ids, not their 3 GB of text.
    # A sharded process keeps its slice's texts, and those of passages that are queries too (the self-hit rule).
    keep = (lambda row, passage_id: keep_text(row) or passage_id in queries) if keep_text else None
    passages = tqdm(iter_corpus(files.corpus), desc=f"read {spec.label} corpus", unit=" passages", disable=not progress)
    corpus = OffsetTexts.from_pairs(passages, keep=keep)
    without_text = [query_id for query_id in qrels if query_id not in queries]
    unknown = [(q, d) for q, judged in qrels.items() for d in judged if d not in corpus]
    checks = {
        "judged_queries": len(qrels),
        "judged_queries_without_text": len(without_text),
        "unjudged_queries_skipped": len(every_query) - len(queries),
        "judged_pairs_not_in_corpus": len(unknown),
        "relevant_pairs_not_in_corpus": sum(qrels[q][d] > 0 for q, d in unknown),
        "empty_passages": corpus.empty_texts,
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
    corpus_uri = hub_uris(spec).get("corpus")
    return RetrievalSplit(spec.label, files.corpus, queries, corpus, qrels, checks, hub_commits(spec), corpus_uri)


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

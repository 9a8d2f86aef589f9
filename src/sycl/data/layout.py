"""Finding a dataset folder's corpus, queries and qrels files, in the BEIR, MS MARCO or TREC layout.

Each file is looked for under the names below, each also gzipped (``.gz``); what is inside is then decided
by the readers from the file itself (``sycl.data.beir_files``):

- corpus: ``corpus.jsonl`` (BEIR, Pyserini), ``collection.tsv`` (MS MARCO);
- queries: ``queries.jsonl``, ``queries.tsv``, or the split's own ``queries.<split>.tsv|.jsonl`` (MS MARCO);
- qrels: ``qrels/<split>.tsv|.txt|.trec|.qrels|.jsonl`` (BEIR, TREC), or ``qrels.<split>.tsv|.txt`` (MS MARCO).

Exactly one name must exist for each: none is an error listing every name tried, two an error naming both
(which one is meant is for a person to say).
"""

from dataclasses import dataclass
from pathlib import Path

from sycl.data.errors import DataFormatError

QRELS_SUFFIXES = (".tsv", ".txt", ".trec", ".qrels", ".jsonl")


@dataclass(frozen=True)
class DatasetFiles:
    """The three files of one split of a dataset folder."""

    corpus: Path
    queries: Path
    qrels: Path


def dataset_files(folder: str | Path, split: str) -> DatasetFiles:
    """The corpus, queries and ``split``'s qrels file of ``folder`` (see the module docstring for the names).

    Raises FileNotFoundError naming the folder and every name looked for when one of them is missing.
    """
    return DatasetFiles(corpus_file(folder), queries_file(folder, split), qrels_file(folder, split))


def corpus_file(folder: str | Path) -> Path:
    """The folder's corpus file: the one of ``corpus.jsonl`` and ``collection.tsv`` (maybe gzipped) that exists."""
    return find_one(Path(folder), "corpus", ["corpus.jsonl", "collection.tsv"])


def queries_file(folder: str | Path, split: str) -> Path:
    """The folder's queries file: one for all splits, or the split's own (MS MARCO)."""
    names = ["queries.jsonl", "queries.tsv", f"queries.{split}.tsv", f"queries.{split}.jsonl"]
    return find_one(Path(folder), "queries", names)


def qrels_file(folder: str | Path, split: str) -> Path:
    """The folder's qrels file of ``split``: under ``qrels/`` (BEIR, TREC) or beside the corpus (MS MARCO)."""
    names = [f"qrels/{split}{suffix}" for suffix in QRELS_SUFFIXES] + [f"qrels.{split}.tsv", f"qrels.{split}.txt"]
    return find_one(Path(folder), f"qrels of split {split!r}", names)


def find_one(folder: Path, what: str, names: list[str]) -> Path:
    """The one existing file among ``names`` and their ``.gz`` twins."""
    candidates = [name + gz for name in names for gz in ("", ".gz")]
    found = [folder / name for name in candidates if (folder / name).is_file()]
    if len(found) > 1:
        names = ", ".join(str(path.relative_to(folder)) for path in found)
        raise DataFormatError(folder, f"{len(found)} files could be its {what}: {names}; keep one of them")
    if not found:
        raise FileNotFoundError(
            f"{folder}: found no {what}: {folder / candidates[0]} does not exist, nor does any of "
            f"{', '.join(candidates[1:])}"
        )
    return found[0]

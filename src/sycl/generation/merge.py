"""Join the output folders of generate.py's array jobs (``shard=i/n``) into one BEIR folder with one report.

    python -m sycl.generation.merge data/synthetic/msmarco.shards/* --output data/synthetic/msmarco

Each folder is a finished generate.py output (corpus.jsonl, queries.jsonl, qrels/<split>.tsv, report.json).
They are read in shard order (0/n first), whatever the order given, so the result does not depend on it.
The merged folder is what one job over all queries writes: a passage text met again under another id
(two queries in different shards got the same passage) is stored once, under its first id, and the later
query's qrels line names that id, as ``write_beir`` does within a run. A passage, query or qrels pair
repeated with the same content is kept once; repeated with other content it is an error naming both
files and lines. Files are written atomically, corpus first, so every id the qrels name is present.
Resume happens in the shard folders (their journals): finish a shard there, then merge again.
"""

import argparse
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from sycl.data.beir_files import iter_jsonl, iter_qrels, text_field
from sycl.data.errors import DataFormatError
from sycl.entry_errors import exit_briefly_on
from sycl.files import atomic_writer, write_lines_atomically
from sycl.generation.errors import GenerationError
from sycl.generation.parsing import normalize_text, word_count
from sycl.generation.report import merged_report
from sycl.generation.writer import WrittenDataset, passage_level, write_queries_and_qrels
from sycl.shards import parse_shard

# Report fields every shard must share: passages made with another model or prompt are not one dataset.
SETUP_FIELDS = ("model", "prompt_mode", "samples_per_level", "split")


def merge_generated(folders: list[str | Path], output_dir: str | Path, overwrite: bool = False) -> dict:
    """Write the merged BEIR folder and report.json into ``output_dir``; returns the report.

    ``GenerationError`` when the folders are not the n shards of one setup (one missing or given twice,
    different models), ``DataFormatError`` naming file and line for content that disagrees, ``FileExistsError``
    when ``output_dir`` already holds a corpus and ``overwrite`` is false (checked before any work).
    """
    output_dir = Path(output_dir)
    shards = read_shards([Path(folder) for folder in folders])
    if any(output_dir.resolve() == folder.resolve() for folder, _ in shards):
        raise GenerationError(f"--output {output_dir} is one of the shard folders: choose another folder")
    if (output_dir / "corpus.jsonl").exists() and not overwrite:
        raise FileExistsError(f"{output_dir / 'corpus.jsonl'} exists: add --overwrite to replace it")
    split = shards[0][1]["setup"]["split"]
    folders = [folder for folder, _ in shards]
    written = WrittenDataset()
    doc_of_text: dict[bytes, str] = {}
    seen_ids: set[str] = set()
    shared: dict[str, str] = {}  # a later shard's passage id -> the id its text is stored under

    def corpus_lines() -> Iterator[str]:
        for folder in folders:
            path = folder / "corpus.jsonl"
            for line, record in iter_jsonl(path):
                doc_id, text = text_field(path, line, record, "_id"), text_field(path, line, record, "text", True)
                digest = hashlib.blake2b(normalize_text(text).encode(), digest_size=16).digest()
                stored = doc_of_text.get(digest)
                if doc_id in seen_ids:
                    if stored != shared.get(doc_id, doc_id):
                        raise disagreement(path, line, "_id", doc_id, "passage", folders, "corpus.jsonl")
                    continue
                seen_ids.add(doc_id)
                if stored is not None:
                    shared[doc_id] = stored
                    written.duplicates_across_queries += 1
                    continue
                doc_of_text[digest] = doc_id
                written.passages += 1
                level = passage_level(doc_id)
                if level is not None:
                    written.words.setdefault(level, []).append(word_count(text))
                yield json.dumps(record, ensure_ascii=False) + "\n"

    # The corpus stays a temporary file until queries and qrels are checked too: a refused merge writes nothing.
    with atomic_writer(output_dir / "corpus.jsonl") as corpus:
        corpus.writelines(corpus_lines())
        queries = merged_queries(folders)
        qrels = merged_qrels(folders, split, queries, seen_ids, shared)
    write_queries_and_qrels(output_dir, queries, qrels, split, written)
    written.duplicates_within_query = sum(r["passages"]["duplicates_within_query_dropped"] for _, r in shards)
    written.duplicates_across_queries += sum(r["passages"]["duplicates_across_queries_shared"] for _, r in shards)
    report = merged_report([r for _, r in shards], [str(folder) for folder in folders], written)
    write_lines_atomically(output_dir / "report.json", [json.dumps(report, indent=2, ensure_ascii=False) + "\n"])
    return report


def merged_queries(folders: list[Path]) -> dict[str, str]:
    """{query id: text} of every shard, in shard and file order; a query repeated with other text is an error."""
    queries: dict[str, str] = {}
    for folder in folders:
        path = folder / "queries.jsonl"
        for line, record in iter_jsonl(path):
            query_id, text = text_field(path, line, record, "_id"), text_field(path, line, record, "text")
            if queries.setdefault(query_id, text) != text:
                raise disagreement(path, line, "_id", query_id, "query", folders, "queries.jsonl")
    return queries


def merged_qrels(
    folders: list[Path], split: str, queries: dict[str, str], corpus_ids: set[str], shared: dict[str, str]
) -> dict[str, dict[str, int]]:
    """{query id: {passage id: level}} of every shard, each passage under the id its text is stored as."""
    qrels: dict[str, dict[str, int]] = {}
    for folder in folders:
        path = folder / "qrels" / f"{split}.tsv"
        for line, query_id, doc_id, score in iter_qrels(path):
            if query_id not in queries or doc_id not in corpus_ids:
                missing = f"query {query_id!r}" if query_id not in queries else f"passage {doc_id!r}"
                raise DataFormatError(path, f"names {missing}, which no shard holds", line)
            judged = qrels.setdefault(query_id, {})
            doc_id = shared.get(doc_id, doc_id)
            if judged.setdefault(doc_id, int(score)) != int(score):
                first = next(
                    f"{earlier}, line {earlier_line}"
                    for earlier in (folder / "qrels" / f"{split}.tsv" for folder in folders)
                    for earlier_line, q, d, _ in iter_qrels(earlier)
                    if q == query_id and shared.get(d, d) == doc_id
                )
                message = f"query {query_id!r} judges passage {doc_id!r} {int(score)}, but {judged[doc_id]} in {first}"
                raise DataFormatError(path, message, line)
    return qrels


def read_shards(folders: list[Path]) -> list[tuple[Path, dict]]:
    """(folder, report) of each finished shard, in shard order; the checks of ``merge_generated``'s docstring."""
    if not folders:
        raise GenerationError("no shard folders given")
    shards = []
    for folder in folders:
        report_path = folder / "report.json"
        if not report_path.is_file() or not (folder / "corpus.jsonl").is_file():
            raise GenerationError(
                f"{folder} holds no finished generate.py output (report.json and corpus.jsonl): run its "
                "generate.py command again to finish it"
            )
        try:
            report = json.loads(report_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DataFormatError(report_path, f"not valid JSON ({error}): run its generate.py command again") from None
        if "split" not in report.get("setup", {}):
            raise DataFormatError(report_path, "written before shards existed: run its generate.py command again")
        shards.append((folder, report))
    first_folder, first = shards[0]
    for folder, report in shards[1:]:
        differ = [field for field in SETUP_FIELDS if report["setup"][field] != first["setup"][field]]
        if differ:
            raise GenerationError(
                f"{folder} and {first_folder} differ in {', '.join(differ)}: "
                + "; ".join(f"{f} {report['setup'][f]!r} vs {first['setup'][f]!r}" for f in differ)
            )
    labels = [parse_shard(report["setup"]["shard"]) for _, report in shards]
    if all(label is None for label in labels):  # whole runs, e.g. over two queries files: joined as given
        return shards
    if any(label is None for label in labels):
        raise GenerationError("some folders are shards (shard=i/n) and some whole runs: merge the shards first")
    count = labels[0].count
    by_index: dict[int, Path] = {}
    for (folder, _), label in zip(shards, labels, strict=True):
        if label.count != count:
            raise GenerationError(f"{folder} is shard {label}, {shards[0][0]} is shard {labels[0]}: one n for all")
        if label.index in by_index:
            raise GenerationError(f"{folder} and {by_index[label.index]} are both shard {label}")
        by_index[label.index] = folder
    missing = [f"{index}/{count}" for index in range(count) if index not in by_index]
    if missing:
        raise GenerationError(f"shard {', '.join(missing)} missing: give all {count} shard folders")
    order = sorted(range(len(shards)), key=lambda position: labels[position].index)
    return [shards[position] for position in order]


def disagreement(path: Path, line: int, field: str, key: str, kind: str, folders: list[Path], name: str):
    """The error for ``key`` repeated with other content, naming where it was first seen."""
    for folder in folders:
        earlier = folder / name
        for earlier_line, record in iter_jsonl(earlier):
            if record.get(field) == key:
                return DataFormatError(
                    path, f"{kind} {key!r} differs from the one in {earlier}, line {earlier_line}", line, field
                )
    return DataFormatError(path, f"{kind} {key!r} differs from another shard's", line, field)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sycl.generation.merge", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("folders", nargs="+", help="the output_dir of each shard's generate.py run")
    parser.add_argument("--output", required=True, help="the merged BEIR folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing merged folder's files")
    args = parser.parse_args(argv)
    errors = (GenerationError, DataFormatError, FileExistsError)
    report = exit_briefly_on(errors, lambda: merge_generated(args.folders, args.output, args.overwrite))
    queries, passages = report["queries"], report["passages"]
    print(
        f"Merged {len(args.folders)} folders into {args.output}: {queries['written']} queries, "
        f"{passages['written']} passages ({passages['duplicates_across_queries_shared']} shared across queries)"
    )


if __name__ == "__main__":
    main()

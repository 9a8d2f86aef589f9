"""Join the negatives files of mine.py's array jobs (``shard=i/n``) into one grouped .jsonl qrels file.

    python -m sycl.mining.merge negatives.shard*.jsonl --output data/beir/msmarco/qrels/bm25_negatives.jsonl

Lines are kept in the order of the files given, each file in its own order (training reads the file by query
id, so the order does not matter). A query's line repeated as it was is kept once; repeated with other content
it is an error naming both files and lines. The output is written atomically, and an existing one is replaced
only with ``--overwrite``, checked before any work, as mine.py does.
"""

import argparse
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from sycl.data.beir_files import iter_jsonl, text_field
from sycl.data.errors import DataFormatError
from sycl.entry_errors import exit_briefly_on
from sycl.files import write_lines_atomically


def merge_negatives(files: list[str | Path], output: str | Path, overwrite: bool = False) -> dict:
    """Write the lines of ``files`` without repeats to ``output``; returns counts (files, queries, negatives,
    repeated lines dropped). ``DataFormatError`` for a query whose lines disagree, ``FileExistsError`` for an
    existing ``output`` without ``overwrite``."""
    files, output = [Path(path) for path in files], Path(output)
    if not files:
        raise ValueError("no negatives files given")
    if any(output.resolve() == path.resolve() for path in files):
        raise FileExistsError(f"--output {output} is one of the input files: choose another file")
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists: add --overwrite to replace it, or choose another --output")
    summary = {"files": len(files), "queries": 0, "negatives": 0, "repeated_lines_dropped": 0}
    first_seen: dict[str, tuple[bytes, int, int]] = {}  # query id -> (content digest, file index, line)

    def lines() -> Iterator[str]:
        for position, path in enumerate(files):
            for line, record in iter_jsonl(path):
                query_id = text_field(path, line, record, "query-id")
                digest = hashlib.blake2b(json.dumps(record, sort_keys=True).encode(), digest_size=16).digest()
                if query_id in first_seen:
                    earlier_digest, earlier_file, earlier_line = first_seen[query_id]
                    if digest != earlier_digest:
                        where = f"{files[earlier_file]}, line {earlier_line}"
                        message = f"query {query_id!r} has other negatives than in {where}"
                        raise DataFormatError(path, message, line, "query-id")
                    summary["repeated_lines_dropped"] += 1
                    continue
                first_seen[query_id] = (digest, position, line)
                summary["queries"] += 1
                summary["negatives"] += len(record.get("corpus-ids", []))
                yield json.dumps(record, ensure_ascii=False) + "\n"

    write_lines_atomically(output, lines())
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sycl.mining.merge", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("files", nargs="+", help="the output of each shard's mine.py run")
    parser.add_argument("--output", required=True, help="the merged negatives file")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    args = parser.parse_args(argv)
    errors = (DataFormatError, FileExistsError)
    summary = exit_briefly_on(errors, lambda: merge_negatives(args.files, args.output, args.overwrite))
    print(
        f"Merged {summary['files']} files into {args.output}: {summary['negatives']} negatives for "
        f"{summary['queries']} queries ({summary['repeated_lines_dropped']} repeated lines dropped)"
    )


if __name__ == "__main__":
    main()

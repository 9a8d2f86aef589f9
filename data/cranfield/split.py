#!/usr/bin/env python3
"""Split Cranfield's 225 judged queries into dev (75) and test (150): qrels/all.tsv -> qrels/dev.tsv, qrels/test.tsv.

The rule is fixed and independent of any model: queries are ordered by the SHA-256 of "cranfield:<query id>"
and the first third goes to dev. Every judgement of a query stays with its query. dev picks checkpoints and
stops training early (conf/callbacks/default.yaml); test is only ever reported. Writes splits.json (the ids
and label histogram of each split) and prints it.
usage: split.py [FOLDER]   (default: this file's folder)
"""

import collections
import hashlib
import json
import sys
from pathlib import Path

DEV_FRACTION = 1 / 3


def order_key(query_id: str) -> str:
    return hashlib.sha256(f"cranfield:{query_id}".encode()).hexdigest()


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
    header, *rows = (folder / "qrels" / "all.tsv").read_text().splitlines()
    by_query = collections.defaultdict(list)
    for row in rows:
        by_query[row.split("\t")[0]].append(row)
    ordered = sorted(by_query, key=order_key)
    n_dev = round(len(ordered) * DEV_FRACTION)
    splits = {"dev": set(ordered[:n_dev]), "test": set(ordered[n_dev:])}
    summary = {}
    for name, ids in splits.items():
        kept = [row for row in rows if row.split("\t")[0] in ids]  # all.tsv's row order
        (folder / "qrels" / f"{name}.tsv").write_text("\n".join([header, *kept]) + "\n")
        labels = collections.Counter(row.split("\t")[2] for row in kept)
        summary[name] = {
            "queries": len(ids),
            "qrels_rows": len(kept),
            "score_hist": dict(sorted(labels.items())),
            "query_ids": sorted(ids, key=int),
        }
    (folder / "splits.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({name: {k: v for k, v in s.items() if k != "query_ids"} for name, s in summary.items()}, indent=1))


if __name__ == "__main__":
    main()

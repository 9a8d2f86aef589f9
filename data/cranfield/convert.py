#!/usr/bin/env python3
"""Cranfield-1400 -> BEIR layout.  Source: the classic Glasgow distribution files
(cran.all.1400, cran.qry, cranqrel, cranqrel.readme) as committed in the public
GitHub repository noramtboraas/information-retrieval, read from its git objects.

Conversions (deterministic, no hand edits):
 * docs: ".I n" -> _id "n"; ".T" -> title; ".W" -> text (lines joined with a space,
   outer whitespace stripped); ".A"/".B" (author, bibliographic ref) are dropped.
 * queries: cranqrel numbers the queries 1..225 SEQUENTIALLY, while cran.qry's ".I"
   labels run 001..365 with gaps; the i-th query of cran.qry is qrels query i
   (the standard reading).  _id = str(i); the original ".I" label is kept in
   metadata.cran_qry_I.
 * relevance: cranqrel uses Cleverdon's codes (cranqrel.readme): 1 complete answer,
   2 high relevance, 3 useful, 4 minimum interest; plus one "-1" row per query.
   BEIR score = 5 - code for codes 1..4 (so 4 = best, 1 = minimum interest) and
   -1 -> 4: the -1 row of each query is the source document the question was written from
   (e.g. query 1 "similarity laws ... aeroelastic models of heated high speed aircraft" ->
   doc 486 "similarity laws for aerothermoelastic testing"), so it is a complete answer.
usage: convert.py OUT_DIR [GIT_DIR]
"""

import collections
import json
import os
import subprocess
import sys

GIT = os.path.join(os.environ.get("MIRRORS", "mirrors"), "noramtboraas+information-retrieval", "repo")
COMMIT = "4ea1b8e02da1db64b68b0364d50620b3c95528dc"


def show(gitdir, path):
    raw = subprocess.run(["git", "-C", gitdir, "show", f"{COMMIT}:{path}"], check=True, capture_output=True).stdout
    return raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


def records(text):
    recs, cur = [], None
    for line in text.split("\n"):
        if line.startswith(".I "):
            cur = {"I": line[3:].strip(), "fields": collections.defaultdict(list)}
            recs.append(cur)
            field = None
        elif line[:2] in (".T", ".A", ".B", ".W") and line.strip() == line[:2]:
            field = line[1]
        elif cur is not None and field is not None:
            cur["fields"][field].append(line.strip())
    return recs


def main():
    out = sys.argv[1]
    gitdir = sys.argv[2] if len(sys.argv) > 2 else GIT
    os.makedirs(os.path.join(out, "qrels"), exist_ok=True)
    docs = records(show(gitdir, "cran.all.1400"))
    with open(os.path.join(out, "corpus.jsonl"), "w") as f:
        for d in docs:
            title, text = " ".join(d["fields"]["T"]).strip(), " ".join(d["fields"]["W"]).strip()
            f.write(json.dumps({"_id": str(int(d["I"])), "title": title, "text": text}) + "\n")
    qs = records(show(gitdir, "cran.qry"))
    with open(os.path.join(out, "queries.jsonl"), "w") as f:
        for i, q in enumerate(qs, 1):
            f.write(
                json.dumps(
                    {"_id": str(i), "text": " ".join(q["fields"]["W"]).strip(), "metadata": {"cran_qry_I": q["I"]}}
                )
                + "\n"
            )
    rows, codes = [], collections.Counter()
    for line in show(gitdir, "cranqrel").split("\n"):
        if not line.strip():
            continue
        q, d, c = line.split()
        c = int(c)
        codes[c] += 1
        score = 5 - c if c in (1, 2, 3, 4) else 4
        assert c in (1, 2, 3, 4, -1)
        rows.append((q, d, score))
    with open(os.path.join(out, "qrels", "all.tsv"), "w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for q, d, s in rows:
            f.write(f"{q}\t{d}\t{s}\n")
    ids = {str(int(d["I"])) for d in docs}
    stats = {
        "docs": len(docs),
        "docs_empty_text": sum(1 for d in docs if not " ".join(d["fields"]["W"]).strip()),
        "queries": len(qs),
        "qrels_rows": len(rows),
        "qrels_queries": len({q for q, _, _ in rows}),
        "qrels_docs_missing_from_corpus": sorted({d for _, d, _ in rows if d not in ids}),
        "duplicate_pairs": len(rows) - len({(q, d) for q, d, _ in rows}),
        "raw_code_hist": dict(sorted(codes.items())),
        "beir_score_hist": dict(sorted(collections.Counter(s for _, _, s in rows).items())),
    }
    with open(os.path.join(out, "stats.json"), "w") as f:
        json.dump(stats, f, indent=1)
    print(json.dumps(stats, indent=1))


if __name__ == "__main__":
    main()

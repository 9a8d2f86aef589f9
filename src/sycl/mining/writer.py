"""Writing mined negatives as grouped .jsonl qrels, atomically.

One line per query: ``{"query-id", "corpus-ids", "scores", "retrieval-scores", "ranks"}``.
``scores`` are relevance labels, all 0: a mined negative is judged not relevant, so the file is a valid
negatives source as it stands, and a config relabels it with ``score_transform`` (e.g. 1 in
synth_plus_real). The miner's own scores and ranks go in separate fields that ``iter_qrels`` ignores:
keeping BM25 scores out of ``scores`` means they can never be trained on as labels by mistake.
"""

import json
from pathlib import Path

from sycl.files import atomic_writer
from sycl.mining.negatives import Negative


class NegativesWriter:
    """Context manager: lines go to a temporary file next to ``path``, renamed onto it only on success.

    A reader (a training run, a second mining job) never sees a half-written file; a failed or killed
    run leaves the previous file, if any, untouched.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.queries = 0
        self.negatives = 0
        self._writer = atomic_writer(self.path)
        self._handle = None

    def __enter__(self) -> "NegativesWriter":
        self._handle = self._writer.__enter__()
        return self

    def write(self, query_id: str, negatives: list[Negative]) -> None:
        """One query's negatives, best rank first (the caller leaves out queries without any)."""
        record = {
            "query-id": query_id,
            "corpus-ids": [n.corpus_id for n in negatives],
            "scores": [0] * len(negatives),
            "retrieval-scores": [round(n.score, 4) for n in negatives],
            "ranks": [n.rank for n in negatives],
        }
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.queries += 1
        self.negatives += len(negatives)

    def __exit__(self, error_type, error, traceback) -> None:
        self._writer.__exit__(error_type, error, traceback)

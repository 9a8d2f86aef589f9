"""Writing mined negatives as grouped .jsonl qrels, atomically.

One line per query: ``{"query-id", "corpus-ids", "scores", "retrieval-scores", "ranks"}``.
``scores`` are relevance labels, all 0: a mined negative is judged not relevant, so the file is a valid
negatives source as it stands, and a config relabels it with ``score_transform`` (e.g. 1 in
synth_plus_real). The miner's own scores and ranks go in separate fields that ``iter_qrels`` ignores:
keeping BM25 scores out of ``scores`` means they can never be trained on as labels by mistake.
"""

import json
import os
import tempfile
from pathlib import Path

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
        self._handle = None
        self._temporary: str | None = None

    def __enter__(self) -> "NegativesWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        prefix = f".{self.path.name}."
        descriptor, self._temporary = tempfile.mkstemp(dir=self.path.parent, prefix=prefix, suffix=".tmp")
        self._handle = os.fdopen(descriptor, "w", encoding="utf-8")
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
        self._handle.close()
        if error_type is None:
            # mkstemp creates the file readable by its owner only; give it the permissions open() would.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self._temporary, 0o666 & ~umask)
            os.replace(self._temporary, self.path)
        else:
            Path(self._temporary).unlink(missing_ok=True)

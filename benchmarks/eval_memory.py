"""Evaluation memory as the corpus grows: texts read by offset vs one dict, search on the memory-mapped store vs
faiss IndexFlatIP, and eval.py end to end.

    python benchmarks/eval_memory.py                       # 100k, 300k and 1M passages (about 15 min)
    python benchmarks/eval_memory.py --sizes 100000 --eval-sizes 20000

Synthetic MS MARCO-shaped passages (40-70 random words, about 350 characters) and random unit embeddings
(--dim 384, MiniLM's width). Every figure comes from a fresh process: its peak RSS (``VmHWM``, reset after the
imports) above what it held after its imports, and, sampled every 5 ms, its peak anonymous RSS (``RssAnon``:
memory that is the process's own; page cache of a memory-mapped file counts in RSS but not here, and the kernel
reclaims it under pressure). Variants:

- ``texts_dict``: ``read_corpus`` (one {id: text} dict, how evaluation held a corpus before);
- ``texts_offset``: ``OffsetTexts`` (what ``load_split`` holds now: ids, offsets, lengths; texts on disk);
- ``search_store_float32`` / ``_float16``: ``exact_search`` of --queries queries (top --top-k) over a store
  folder opened memory-mapped, as eval.py searches;
- ``faiss_flat_ip``: the peer, faiss ``IndexFlatIP`` (exact), which holds the whole corpus in memory;
- ``eval_py`` (--eval-sizes): eval.py (its Hydra main, run in the measuring process) on a synthetic BEIR folder
  with 200 queries and a small random BERT (2 layers, 64 wide), cache off: the corpus is read, encoded into a
  temporary store and searched.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from eval_scaling import synthetic_collection

ROOT = Path(__file__).resolve().parents[1]


def write_corpus(folder: Path, passages: int, queries: int) -> None:
    """eval_scaling.py's synthetic BEIR folder with MS MARCO-length passages (40-70 words)."""
    synthetic_collection(folder, passages, queries, words_per_passage=(40, 70))


def write_stores(folder: Path, passages: int, dim: int) -> None:
    """Random unit embeddings of ``passages`` rows in a float32 and a float16 store folder, written in blocks."""
    import torch
    import torch.nn.functional as F

    from sycl.evaluation.store import write_entry

    ids = [f"d{i}" for i in range(passages)]

    def fill(allocate):
        generator = torch.Generator().manual_seed(0)  # the same vectors in both stores
        out = allocate(passages, dim)
        for start in range(0, passages, 100_000):
            rows = min(100_000, passages - start)
            out[start : start + rows] = F.normalize(torch.randn(rows, dim, generator=generator), dim=1)

    for dtype in ("float32", "float16"):
        write_entry(folder / dtype, ids, dtype, fill)


class PeakAnonymous:
    """Samples the process's RssAnon (kB, /proc/self/status) every 5 ms in a thread; ``peak`` is the highest."""

    def __init__(self):
        self.peak = self.now()
        self.running = True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    @staticmethod
    def now() -> int:
        return status_kb("RssAnon")

    def sample(self):
        while self.running:
            self.peak = max(self.peak, self.now())
            time.sleep(0.005)

    def stop(self) -> int:
        self.running = False
        self.thread.join()
        return max(self.peak, self.now())


def status_kb(field: str) -> int:
    """A kB field of /proc/self/status (VmRSS, VmHWM, RssAnon)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so that the imports' own peak is not counted."""
    Path("/proc/self/clear_refs").write_text("5")


def measure(variant: str, folder: Path, queries: int, top_k: int, dim: int) -> dict:
    """Run one variant in this (fresh) process; returns seconds and MB above the post-import baseline."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from sycl.data.beir_files import iter_corpus, read_corpus
    from sycl.data.text_store import OffsetTexts
    from sycl.evaluation.search import exact_search, faiss_search
    from sycl.evaluation.store import open_embeddings

    if variant == "eval_py":  # what eval.py imports, imported before the baseline as the other variants' are
        import hydra  # noqa: F401
        import lightning.fabric  # noqa: F401

        import sycl.evaluation.run  # noqa: F401
    query_vectors = F.normalize(torch.randn(queries, dim, generator=torch.Generator().manual_seed(1)), dim=1)
    reset_peak_rss()
    baseline_kb, baseline_anon = status_kb("VmRSS"), PeakAnonymous.now()
    anonymous = PeakAnonymous()
    start = time.perf_counter()
    if variant == "texts_dict":
        held = read_corpus(folder / "corpus.jsonl")
    elif variant == "texts_offset":
        held = OffsetTexts.from_pairs(iter_corpus(folder / "corpus.jsonl"))
    elif variant.startswith("search_store_"):
        held = exact_search(query_vectors, open_embeddings(folder / variant.removeprefix("search_store_")), top_k)
    elif variant == "eval_py":
        held = run_eval_py(folder.parent / "model", folder, folder.parent / f"run-{folder.name}")
    elif variant == "faiss_flat_ip":
        corpus = torch.from_numpy(np.load(folder / "float32" / "embeddings.npy"))  # read into memory, as faiss needs
        held = faiss_search(query_vectors, corpus, top_k)
    else:
        raise ValueError(variant)
    seconds = time.perf_counter() - start
    peak_anon = anonymous.stop()
    del held
    peak_kb = status_kb("VmHWM")
    return {
        "seconds": round(seconds, 2),
        "rss_mb": round((peak_kb - baseline_kb) / 1024),
        "anon_mb": round((peak_anon - baseline_anon) / 1024),
    }


def small_model(folder: Path) -> None:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from sycl.config import bundled_minilm_path

    torch.manual_seed(0)
    config = BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256)
    BertModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(bundled_minilm_path()).save_pretrained(folder)


def run_eval_py(model: Path, dataset: Path, run_dir: Path) -> None:
    """``python eval.py`` on ``dataset``, run in this process (Hydra's main, as from the shell), cache off."""
    import runpy

    sys.argv = [
        "eval.py", f"model.name_or_path={model}", "model.query_max_length=16", "model.passage_max_length=64",
        f"datasets=[{dataset}]", "evaluation.cache_dir=null", "evaluation.progress=false",
        "evaluation.batch_size=256", "evaluation.top_k=100", f"hydra.run.dir={run_dir}",
    ]  # fmt: skip
    runpy.run_path(str(ROOT / "eval.py"), run_name="__main__")


def slope_per_million(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of (passages, MB) points, in MB per million passages."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in points)
    variance = sum((x - mean_x) ** 2 for x, _ in points)
    return covariance / variance * 1e6 if variance else float("nan")


VARIANTS = ("texts_dict", "texts_offset", "search_store_float32", "search_store_float16", "faiss_flat_ip")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--eval-sizes", type=int, nargs="*", default=[50_000, 150_000, 300_000])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--top-k", type=int, default=100)
    parser.add_argument("--measure", nargs=2, metavar=("VARIANT", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # one measurement, in a child process
        print(json.dumps(measure(args.measure[0], Path(args.measure[1]), args.queries, args.top_k, args.dim)))
        return

    def child(measure: list[str]) -> dict:
        """One measurement in a fresh process; its last output line is the JSON result."""
        command = [sys.executable, __file__, *measure, "--dim", str(args.dim), "--queries", str(args.queries)]
        finished = subprocess.run(command + ["--top-k", str(args.top_k)], cwd=ROOT, capture_output=True, text=True)
        if finished.returncode != 0:
            raise RuntimeError(finished.stderr[-3000:])
        return json.loads(finished.stdout.strip().splitlines()[-1])

    rows = {}
    with tempfile.TemporaryDirectory(prefix="sycl-eval-memory-") as scratch:
        for size in args.sizes:
            folder = Path(scratch) / f"n{size}"
            write_corpus(folder, size, queries=10)
            write_stores(folder, size, args.dim)
            for variant in VARIANTS:
                rows[(size, variant)] = child(["--measure", variant, str(folder)])
                print(size, variant, rows[(size, variant)], flush=True)
        small_model(Path(scratch) / "model")
        for size in args.eval_sizes:
            folder = Path(scratch) / f"eval{size}"
            write_corpus(folder, size, queries=200)
            rows[(size, "eval_py")] = child(["--measure", "eval_py", str(folder)])
            print(size, "eval_py", rows[(size, "eval_py")], flush=True)

    print(f"\ndim {args.dim}, {args.queries} queries, top-{args.top_k}; MB above the process's post-import memory")
    print("| passages | variant | seconds | peak RSS MB | peak anonymous MB |")
    print("|---:|---|---:|---:|---:|")
    for (size, variant), row in rows.items():
        print(f"| {size:,} | {variant} | {row['seconds']} | {row['rss_mb']} | {row['anon_mb']} |")
    variants = VARIANTS + (("eval_py",) if args.eval_sizes else ())
    print("\nper million passages (least-squares slope over the sizes):")
    for variant in variants:
        points = [(size, row) for (size, name), row in rows.items() if name == variant]
        if len(points) < 2:
            continue
        rss = slope_per_million([(size, row["rss_mb"]) for size, row in points])
        anon = slope_per_million([(size, row["anon_mb"]) for size, row in points])
        print(f"  {variant}: peak RSS {rss:.0f} MB, anonymous {anon:.0f} MB")
    largest = max(args.sizes)
    ours, faiss = rows[(largest, "search_store_float32")], rows[(largest, "faiss_flat_ip")]
    print(f"ratio_search_seconds_faiss_vs_store_at_{largest}: {faiss['seconds'] / ours['seconds']:.2f}")
    print(f"ratio_peak_anonymous_faiss_vs_store_at_{largest}: {faiss['anon_mb'] / max(ours['anon_mb'], 1):.1f}")


if __name__ == "__main__":
    main()

"""BM25 ranking time of mine.py with miner.workers=N against workers=1 and bm25s's own threaded retrieve, same index.

    python benchmarks/mine_workers.py [--passages 50000] [--queries 2000] [--top-k 1000] [--workers 2] [--repeats 7]

A synthetic corpus shaped like MS MARCO's passages (30-80 words, 55 on average, drawn from a Zipf vocabulary of
200k terms) is written as corpus.jsonl and indexed once by ``BM25Miner.index``; each variant then ranks the same
queries (3-8 words) to ``--top-k``, from their text to lists of (passage id, score): ``workers_1`` (the baseline,
mine.py's default), ``workers_N`` (``BM25Miner(workers=N)``, forked processes sharing the index) and
``bm25s_threads_N`` (the same work through ``bm25s.BM25.retrieve`` with ``n_threads=N``, the library's own
parallel top-k, which ranks in threads). Median of ``--repeats`` alternating runs, short so that
other work on a shared machine slows each variant alike; the pool's start-up is inside the timing. The load
average, and how much faster N processes of pure computation run than one, before and after, say how free the
cores were (a shared machine may give less than N). CPU seconds, of this process and of its workers (medians),
are the cost, which does not depend on other work, and show how the work splits: with a free core for each
process, the wall time would tend to the larger of this process's CPU seconds and the workers' / N. Last
lines: ratio_workers_N_vs_workers_1 and ratio_workers_N_vs_bm25s_threads_N, baseline seconds / ours (higher is
better).
"""

import argparse
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from sycl.mining import BM25Miner


def write_corpus(path: Path, passages: int, vocabulary: int, rng: np.random.Generator) -> list[str]:
    """Write the corpus; returns the terms, most frequent first."""
    terms = [f"t{index}x" for index in range(vocabulary)]
    weights = 1.0 / np.arange(1, vocabulary + 1) ** 1.1
    weights /= weights.sum()
    lengths = rng.integers(30, 81, passages)
    words = rng.choice(vocabulary, size=int(lengths.sum()), p=weights)
    with path.open("w") as corpus:
        start = 0
        for index, length in enumerate(lengths):
            text = " ".join(terms[w] for w in words[start : start + length])
            corpus.write(json.dumps({"_id": f"p{index}", "text": text}) + "\n")
            start += length
    return terms


def spin(iterations: int) -> int:
    """Pure computation, no memory traffic: what N processes of it gain over one is what the cores give now."""
    total = 0
    for value in range(iterations):
        total += value
    return total


def core_capacity(workers: int, iterations: int = 5_000_000) -> float:
    """Seconds for ``workers`` spins one after another / in ``workers`` forked processes (``workers`` if all free)."""
    start = time.perf_counter()
    for _ in range(workers):
        spin(iterations)
    serial = time.perf_counter() - start
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        start = time.perf_counter()
        pool.map(spin, [iterations] * workers, chunksize=1)
        parallel = time.perf_counter() - start
    return serial / parallel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--top-k", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        corpus_path = Path(folder) / "corpus.jsonl"
        terms = write_corpus(corpus_path, args.passages, 200_000, rng)
        weights = 1.0 / np.arange(1, len(terms) + 1) ** 1.1
        weights /= weights.sum()
        queries = {
            f"q{index}": " ".join(terms[w] for w in rng.choice(len(terms), size=rng.integers(3, 9), p=weights))
            for index in range(args.queries)
        }
        baseline = BM25Miner(progress=False)
        started = time.perf_counter()
        retriever, corpus_ids = baseline.index(corpus_path)
        index_seconds = time.perf_counter() - started
    parallel = BM25Miner(workers=args.workers, progress=False)

    def ours(miner: BM25Miner):
        return lambda: miner.search(retriever, corpus_ids, queries, args.top_k)

    def bm25s_threads():
        """The same work through bm25s's retrieve: tokenize, rank, and list the hits with a score, as (id, score)."""
        terms = baseline.tokenize(list(queries.values()), return_ids=False)
        known = [[term for term in query_terms if term in retriever.vocab_dict] for query_terms in terms]
        asked = [query_id for query_id, query_terms in zip(queries, known, strict=True) if query_terms]
        documents, scores = retriever.retrieve(  # it refuses a query without any corpus term: those have no hits
            [query_terms for query_terms in known if query_terms],
            k=args.top_k,
            n_threads=args.workers,
            show_progress=False,
        )
        for query_id, row, row_scores in zip(asked, documents, scores, strict=True):
            yield (
                query_id,
                [(corpus_ids[d], s) for d, s in zip(row.tolist(), row_scores.tolist(), strict=True) if s > 0],
            )

    n = args.workers
    candidates = {"workers_1": ours(baseline), f"workers_{n}": ours(parallel), f"bm25s_threads_{n}": bm25s_threads}
    identical = list(candidates["workers_1"]()) == list(candidates[f"workers_{n}"]())
    capacity = [core_capacity(n)]
    seconds = {name: [] for name in candidates}
    cpu_seconds = {name: [] for name in candidates}  # (this process, its reaped workers): the cost, not the wait
    load_before = os.getloadavg()[0]
    for _ in range(args.repeats):
        for name, function in candidates.items():
            cpu_start, start = os.times(), time.perf_counter()
            # Each query's hits are dropped once seen, as mine.py does: holding millions of tuples would time the
            # garbage collector, which walks every live one.
            for _query_id, _hits in function():
                pass
            seconds[name].append(time.perf_counter() - start)
            cpu_end = os.times()
            cpu_seconds[name].append(
                (
                    cpu_end.user + cpu_end.system - cpu_start.user - cpu_start.system,
                    cpu_end.children_user
                    + cpu_end.children_system
                    - cpu_start.children_user
                    - cpu_start.children_system,
                )
            )
    capacity.append(core_capacity(n))
    load = f"load average before: {load_before:.2f}, after: {os.getloadavg()[0]:.2f}"
    print(f"cores: {len(os.sched_getaffinity(0))}, {load}")
    print(
        f"{n} processes of pure computation ran {capacity[0]:.2f}x / {capacity[1]:.2f}x as fast as one "
        f"(before / after): the most {n} workers could gain here"
    )
    print(
        f"corpus: {args.passages} passages, indexed in {index_seconds:.1f} s; {args.queries} queries, top-{args.top_k}"
    )
    print(f"identical hits, workers_1 and workers_{n}: {identical}")
    print("| variant | seconds (median) | min | max | queries/s | CPU s, this process | CPU s, workers |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    median = {name: statistics.median(times) for name, times in seconds.items()}
    for name, times in seconds.items():
        own, workers = (statistics.median(part) for part in zip(*cpu_seconds[name], strict=True))
        print(
            f"| {name} | {median[name]:.2f} | {min(times):.2f} | {max(times):.2f} | {args.queries / median[name]:.0f} "
            f"| {own:.2f} | {workers:.2f} |"
        )
    print(f"ratio_workers_{n}_vs_workers_1: {median['workers_1'] / median[f'workers_{n}']:.2f}")
    print(f"ratio_workers_{n}_vs_bm25s_threads_{n}: {median[f'bm25s_threads_{n}'] / median[f'workers_{n}']:.2f}")


if __name__ == "__main__":
    main()

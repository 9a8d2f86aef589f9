"""Exact top-k search time of sycl's chunked torch search versus faiss IndexFlatIP, same data.

    python benchmarks/search_speed.py [--corpus 100000] [--queries 1000] [--dim 384] [--top-k 100]

Random unit vectors; the median of --repeats alternating runs. Last line:
ratio_vs_faiss_flat_ip: faiss seconds / ours (higher is better; 1.0 = as fast as faiss).
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from sycl.evaluation.search import exact_search, faiss_search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--top-k", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    generator = torch.Generator().manual_seed(0)
    corpus = F.normalize(torch.randn(args.corpus, args.dim, generator=generator), dim=1)
    queries = F.normalize(torch.randn(args.queries, args.dim, generator=generator), dim=1)
    candidates = {"sycl_exact": lambda: exact_search(queries, corpus, args.top_k)}
    try:
        import faiss  # noqa: F401

        candidates["faiss_flat_ip"] = lambda: faiss_search(queries, corpus, args.top_k)
    except ImportError:
        print("faiss is not installed (pip install faiss-cpu): no peer to compare with")
    results = {name: function() for name, function in candidates.items()}  # warm-up, and the agreement check
    if "faiss_flat_ip" in results:
        agreement = (results["sycl_exact"][1] == results["faiss_flat_ip"][1]).float().mean().item()
        print(f"identical top-{args.top_k} ids: {agreement:.4%}")
    seconds = {name: [] for name in candidates}
    for _ in range(args.repeats):
        for name, function in candidates.items():
            start = time.perf_counter()
            function()
            seconds[name].append(time.perf_counter() - start)
    median = {name: statistics.median(times) for name, times in seconds.items()}
    print(f"threads: {torch.get_num_threads()}, corpus: {args.corpus} x {args.dim}, queries: {args.queries}")
    for name, value in median.items():
        print(f"{name}: {value:.3f} s ({args.queries / value:.0f} queries/s)")
    if "faiss_flat_ip" in median:
        print(f"ratio_vs_faiss_flat_ip: {median['faiss_flat_ip'] / median['sycl_exact']:.2f}")


if __name__ == "__main__":
    main()

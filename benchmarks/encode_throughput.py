"""Passage-encoding throughput of sycl's encode_texts versus SentenceTransformer.encode, same model and batch.

    python benchmarks/encode_throughput.py [--passages 1024] [--batch-size 64] [--repeats 3]

Both encode the demo corpus (repeated to --passages texts) with the bundled all-MiniLM-L6-v2 at max
length 256; runs alternate, median (min, max) of --repeats runs. With bf16 (where the CPU has it) ours
runs under bf16 autocast and the peer is loaded with bf16 weights. Last lines:
ratio_vs_sentence_transformers_fp32 and _bf16: ours / theirs at the same precision, higher is better;
ratio_bf16_vs_sentence_transformers_fp32: ours in bf16 / the peer's default fp32.
"""

import argparse
import statistics
import time

import torch
from sentence_transformers import SentenceTransformer

from sycl.config import bundled_minilm_path, repo_root
from sycl.data.beir_files import read_corpus
from sycl.evaluation.encoding import encode_texts
from sycl.models import DualEncoder


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    corpus = list(read_corpus(f"{repo_root()}/data/demo/test/corpus.jsonl").values())
    texts = [corpus[i % len(corpus)] for i in range(args.passages)]
    ours = DualEncoder.from_pretrained(bundled_minilm_path())
    theirs = SentenceTransformer(bundled_minilm_path(), device="cpu")
    theirs.max_seq_length = ours.settings.passage_max_length
    bf16 = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()

    candidates = {
        "sycl_fp32": lambda: encode_texts(ours, texts, "passage", args.batch_size, device="cpu", progress=False),
        "sentence_transformers_fp32": lambda: theirs.encode(texts, batch_size=args.batch_size),
    }
    if bf16:
        theirs_bf16 = SentenceTransformer(bundled_minilm_path(), device="cpu", model_kwargs={"dtype": torch.bfloat16})
        theirs_bf16.max_seq_length = ours.settings.passage_max_length
        candidates["sycl_bf16"] = lambda: encode_texts(
            ours, texts, "passage", args.batch_size, bf16=True, device="cpu", progress=False
        )
        candidates["sentence_transformers_bf16"] = lambda: theirs_bf16.encode(texts, batch_size=args.batch_size)
    for function in candidates.values():  # warm-up
        function()
    seconds = {name: [] for name in candidates}
    for _ in range(args.repeats):
        for name, function in candidates.items():
            seconds[name].append(timed(function))
    rate = {name: args.passages / statistics.median(times) for name, times in seconds.items()}
    print(f"threads: {torch.get_num_threads()}, passages: {args.passages}, batch size: {args.batch_size}")
    print("| encoder | passages/s (median) | min | max |")
    print("|---|---:|---:|---:|")
    for name, times in seconds.items():
        print(f"| {name} | {rate[name]:.1f} | {args.passages / max(times):.1f} | {args.passages / min(times):.1f} |")
    print(f"ratio_vs_sentence_transformers_fp32: {rate['sycl_fp32'] / rate['sentence_transformers_fp32']:.2f}")
    if bf16:
        print(f"ratio_vs_sentence_transformers_bf16: {rate['sycl_bf16'] / rate['sentence_transformers_bf16']:.2f}")
        print(f"ratio_bf16_vs_sentence_transformers_fp32: {rate['sycl_bf16'] / rate['sentence_transformers_fp32']:.2f}")
    else:
        print("bf16: not supported by this CPU, skipped")


if __name__ == "__main__":
    main()

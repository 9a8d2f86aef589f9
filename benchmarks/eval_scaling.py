"""Sharded evaluation: eval.py on two processes against the same eval.py on one, same corpus, same model.

    OMP_NUM_THREADS=1 python benchmarks/eval_scaling.py --passages 20000

Builds a synthetic BEIR folder (random-word passages of 40-120 words, one judged passage per query) and a
small random BERT (4 layers, 128 wide, MiniLM's tokenizer: the figures are about the machinery, not the model),
then times ``python eval.py`` with ``evaluation.devices=1`` and ``evaluation.devices=2`` (gloo on CPU),
alternating, ``--rounds`` times each, embedding cache off. With OMP_NUM_THREADS=1 each process uses one core:
the ratio is the speed-up the second process buys. Prints the median wall time, the main process's peak RSS
(GNU time) and ``ratio_two_processes_vs_one``.
"""

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def synthetic_collection(
    folder: Path, passages: int, queries: int, seed: int = 0, words_per_passage: tuple[int, int] = (40, 120)
) -> None:
    """A BEIR folder: ``passages`` passages of random words (a uniform count in ``words_per_passage``), ``queries``
    queries each judging one passage relevant."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(5000)]
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with (folder / "corpus.jsonl").open("w") as corpus:
        for i in range(passages):
            text = " ".join(rng.choices(words, k=rng.randint(*words_per_passage)))
            corpus.write(json.dumps({"_id": f"d{i}", "title": "", "text": text}) + "\n")
    judged = rng.sample(range(passages), queries)
    with (folder / "queries.jsonl").open("w") as handle:
        for q, d in enumerate(judged):
            handle.write(json.dumps({"_id": f"q{q}", "text": f"w{d % 5000} w{(d * 7) % 5000}"}) + "\n")
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{q}\td{d}\t1\n" for q, d in enumerate(judged))
    )


def small_model(folder: Path) -> None:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from sycl.config import bundled_minilm_path

    torch.manual_seed(0)
    config = BertConfig(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512)
    BertModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(bundled_minilm_path()).save_pretrained(folder)


def timed_eval(model: Path, dataset: Path, devices: int, run_dir: Path) -> tuple[float, int]:
    """(wall seconds, main process peak RSS in MB) of one eval.py run."""
    command = [
        "/usr/bin/time",
        "-f",
        "%M",
        sys.executable,
        "eval.py",
        f"model.name_or_path={model}",
        "model.query_max_length=32",
        "model.passage_max_length=128",
        f"datasets=[{dataset}]",
        "evaluation.cache_dir=null",
        "evaluation.progress=false",
        "evaluation.top_k=100",
        f"evaluation.devices={devices}",
        "evaluation.accelerator=cpu",
        f"hydra.run.dir={run_dir}",
    ]
    start = time.perf_counter()
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if finished.returncode != 0:
        raise RuntimeError(finished.stderr[-3000:])
    peak_kb = int(finished.stderr.strip().splitlines()[-1])
    return elapsed, peak_kb // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=20000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        synthetic_collection(scratch / "synthetic", args.passages, args.queries)
        small_model(scratch / "model")
        times: dict[int, list[float]] = {1: [], 2: []}
        peaks: dict[int, list[int]] = {1: [], 2: []}
        for round_index in range(args.rounds):
            for devices in (1, 2):
                elapsed, peak = timed_eval(
                    scratch / "model", scratch / "synthetic", devices, scratch / f"run{round_index}_{devices}"
                )
                times[devices].append(elapsed)
                peaks[devices].append(peak)
                print(f"round {round_index}: {devices} process(es) {elapsed:.1f} s, main process peak {peak} MB")
    print(f"{args.passages} passages, {args.queries} queries, {args.rounds} rounds")
    print("| processes | wall s (median) | min | max | main process peak RSS MB |")
    print("|---:|---:|---:|---:|---:|")
    for devices in (1, 2):
        series = times[devices]
        median = statistics.median(series)
        print(f"| {devices} | {median:.1f} | {min(series):.1f} | {max(series):.1f} | {max(peaks[devices])} |")
    print(f"ratio_two_processes_vs_one: {statistics.median(times[1]) / statistics.median(times[2]):.2f}")


if __name__ == "__main__":
    main()

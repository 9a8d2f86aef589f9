"""Training throughput (queries/s) of sycl's module against sentence-transformers' MNRL trainer.

    python benchmarks/train_throughput.py [--steps 6] [--repeats 3] [--variants ...] [--accelerator gpu]

Same model (bundled all-MiniLM-L6-v2), same data (the demo's synthetic lists: each query with its
level-3 passage as positive and the other three as negatives), batch of 16 queries x 4 passages, max
lengths 32 (queries) / 128 (passages), AdamW. The peer is sentence-transformers'
SentenceTransformerTrainer with MultipleNegativesRankingLoss (anchor, positive, 3 negatives), in fp32
and with bf16 autocast (the _bf16 variants: skip them with --variants on a CPU without native bf16).
Variants: "fast" = length-bucketed batches + passages encoded in length-sorted chunks of 16;
"compiled" = fast + torch.compile of the encoder; "workers" = fast + tokenization in 1 DataLoader worker.
Each variant runs in a fresh process (so peak memory is its own), variants alternate over
--repeats rounds; throughput is 16 / median step time, warm-up steps excluded (1, or 3 when compiling).
Last lines: each sycl variant / the peer at the same precision, then
ratio_vs_sentence_transformers: best fp32 sycl variant / fp32 sentence-transformers (higher is better).
"""

import argparse
import json
import multiprocessing
import resource
import statistics
import tempfile
import time

import torch

BATCH, GROUP, QUERY_LENGTH, PASSAGE_LENGTH = 16, 4, 32, 128
FAST = {"length_bucketing": True, "passage_chunk_size": 16}
VARIANTS = {
    "sycl_infonce": {"loss": "infonce"},
    "sycl_wasserstein": {"loss": "wasserstein"},
    "sycl_infonce_fast": {"loss": "infonce", **FAST},
    "sycl_wasserstein_fast": {"loss": "wasserstein", **FAST},
    "sycl_wasserstein_fast_workers": {"loss": "wasserstein", **FAST, "num_workers": 1},
    "sycl_wasserstein_fast_compiled": {"loss": "wasserstein", **FAST, "compile": True, "warmup_steps": 3},
    "sentence_transformers_mnrl": {},
    "sycl_wasserstein_fast_bf16": {"loss": "wasserstein", **FAST, "precision": "bf16"},
    "sentence_transformers_mnrl_bf16": {"precision": "bf16"},
}
PEER = "sentence_transformers_mnrl"


def synchronize():
    """Wait for queued GPU work, so a step's time includes its kernels (no-op on CPU)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class StepTimes:
    """Collects wall-clock seconds per optimizer step."""

    def __init__(self):
        self.seconds, self._start = [], 0.0

    def start(self):
        synchronize()
        self._start = time.perf_counter()

    def stop(self):
        synchronize()
        self.seconds.append(time.perf_counter() - self._start)

    def callback(self):
        """A Lightning callback timing every training batch (forward, backward and optimizer step)."""
        from lightning import Callback

        times = self

        class Timer(Callback):
            def on_train_batch_start(self, *args):
                times.start()

            def on_train_batch_end(self, *args):
                times.stop()

        return Timer()


def demo_source() -> dict:
    """The demo's synthetic lists as a ``MultiLevelDataModule`` source."""
    from sycl.config import repo_root

    folder = f"{repo_root()}/data/demo/synthetic"
    return {
        "corpus": f"{folder}/corpus.jsonl",
        "queries": f"{folder}/queries.jsonl",
        "qrels": f"{folder}/qrels/train.tsv",
    }


def demo_lists():
    from sycl.data.beir_files import read_corpus, read_qrels, read_queries

    source = demo_source()
    queries, corpus, qrels = read_queries(source["queries"]), read_corpus(source["corpus"]), read_qrels(source["qrels"])
    return [
        (queries[q], [corpus[d] for d, _ in sorted(judged.items(), key=lambda x: -x[1])]) for q, judged in qrels.items()
    ]


def run_sycl(options: dict, steps: int, accelerator: str) -> list[float]:
    import lightning

    from sycl.config import bundled_minilm_path
    from sycl.data.datamodule import MultiLevelDataModule
    from sycl.losses import InfoNCELoss, WassersteinLoss
    from sycl.models import DualEncoder
    from sycl.training import RetrieverModule

    lightning.seed_everything(0)
    times = StepTimes()

    encoder = DualEncoder.from_pretrained(
        bundled_minilm_path(), query_max_length=QUERY_LENGTH, passage_max_length=PASSAGE_LENGTH
    )
    loss = {"infonce": InfoNCELoss, "wasserstein": WassersteinLoss}[options["loss"]](temperature=0.05)
    module = RetrieverModule(
        encoder,
        loss,
        lr=2e-5,
        passage_chunk_size=options.get("passage_chunk_size"),
        compile=options.get("compile", False),
    )
    datamodule = MultiLevelDataModule(
        [demo_source()],
        group_size=GROUP,
        batch_size=BATCH,
        selection="most_relevant",
        length_bucketing=options.get("length_bucketing", False),
        num_workers=options.get("num_workers", 0),
        tokenization=encoder.tokenization,
    )
    precision = "bf16-mixed" if options.get("precision") == "bf16" else "32-true"
    timed_trainer(times, steps, accelerator, precision).fit(module, datamodule=datamodule)
    return times.seconds


def timed_trainer(times: StepTimes, steps: int, accelerator: str, precision: str = "32-true"):
    """A one-device Trainer that trains ``steps`` steps with ``times`` timing each, and nothing else (no logger,
    checkpoint, progress bar or validation)."""
    from lightning import Trainer

    return Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[times.callback()],
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )


def run_sentence_transformers(options: dict, steps: int, accelerator: str) -> list[float]:
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
        losses,
    )
    from transformers import TrainerCallback

    from sycl.config import bundled_minilm_path

    times = StepTimes()

    class Timer(TrainerCallback):
        def on_step_begin(self, *args, **kwargs):
            times.start()

        def on_step_end(self, *args, **kwargs):
            times.stop()

    lists = demo_lists()
    columns = {"anchor": [q for q, _ in lists], "positive": [p[0] for _, p in lists]}
    columns.update({f"negative_{i}": [p[i] for _, p in lists] for i in range(1, GROUP)})
    model = SentenceTransformer(bundled_minilm_path(), device="cuda" if accelerator == "gpu" else "cpu")
    model.max_seq_length = PASSAGE_LENGTH
    with tempfile.TemporaryDirectory() as output_dir:
        arguments = SentenceTransformerTrainingArguments(
            output_dir=output_dir,
            per_device_train_batch_size=BATCH,
            max_steps=steps,
            learning_rate=2e-5,
            report_to="none",
            save_strategy="no",
            logging_strategy="no",
            dataloader_drop_last=True,
            seed=0,
            use_cpu=accelerator == "cpu",
            bf16=options.get("precision") == "bf16",
            disable_tqdm=True,
        )
        trainer = SentenceTransformerTrainer(
            model=model,
            args=arguments,
            train_dataset=Dataset.from_dict(columns),
            loss=losses.MultipleNegativesRankingLoss(model, scale=20.0),
            callbacks=[Timer()],
        )
        trainer.train()
    return times.seconds


def one_run(name: str, steps: int, accelerator: str, queue) -> None:
    run = run_sentence_transformers if name.startswith("sentence") else run_sycl
    seconds = run(VARIANTS[name], steps + VARIANTS[name].get("warmup_steps", 1) - 1, accelerator)
    if accelerator == "gpu":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(json.dumps({"seconds": seconds, "peak_mb": peak_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--accelerator", choices=["cpu", "gpu"], default="cpu", help="gpu: the first CUDA device")
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    step_times = {name: [] for name in args.variants}
    peaks = {name: [] for name in args.variants}
    for _ in range(args.repeats):
        for name in args.variants:
            queue = context.Queue()
            process = context.Process(target=one_run, args=(name, args.steps, args.accelerator, queue))
            process.start()
            process.join()
            if process.exitcode != 0 or queue.empty():
                raise SystemExit(f"variant {name} failed (exit code {process.exitcode}); its error is above")
            result = json.loads(queue.get())
            step_times[name] += result["seconds"][VARIANTS[name].get("warmup_steps", 1) :]
            peaks[name].append(result["peak_mb"])
    print(
        f"batch {BATCH} queries x {GROUP} passages, max lengths {QUERY_LENGTH}/{PASSAGE_LENGTH}, "
        f"{torch.get_num_threads()} threads, {args.repeats} runs x {args.steps - 1} timed steps per variant"
    )
    memory = "peak GPU memory MB" if args.accelerator == "gpu" else "peak RSS MB"
    print(f"| variant | queries/s (median) | min | max | {memory} |")
    print("|---|---:|---:|---:|---:|")
    rate = {}
    for name in args.variants:
        per_step = [BATCH / s for s in step_times[name]]
        rate[name] = BATCH / statistics.median(step_times[name])
        print(f"| {name} | {rate[name]:.2f} | {min(per_step):.2f} | {max(per_step):.2f} | {max(peaks[name]):.0f} |")
    for name in args.variants:
        peer = PEER + ("_bf16" if VARIANTS[name].get("precision") == "bf16" else "")
        if name.startswith("sycl") and peer in rate:
            print(f"{name} / {peer}: {rate[name] / rate[peer]:.2f}")
    fp32 = [rate[n] for n in args.variants if n.startswith("sycl") and VARIANTS[n].get("precision") != "bf16"]
    if PEER in rate and fp32:
        print(f"ratio_vs_sentence_transformers: {max(fp32) / rate[PEER]:.2f}")


if __name__ == "__main__":
    main()

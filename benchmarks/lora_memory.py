"""Peak memory and step time of a decoder embedder: full fine-tuning, LoRA, and either with gradient checkpointing.

    python benchmarks/lora_memory.py [--model PATH_OR_HUB_ID] [--dtype bfloat16] [--steps 4] [--repeats 2]
                                     [--variants ...] [--accelerator gpu]

The training step is train.py's (RetrieverModule, AdamW, InfoNCE at temperature 0.05) on the demo's synthetic
lists, 8 queries x 4 passages, max lengths 32 / 128, last-token pooling on an appended EOS, left padding.
Default model: a Qwen2 decoder with random weights built from a config (no download): 6 layers, hidden 384, 6 query
heads / 2 key-value heads, MLP 1024, with the bundled MiniLM tokenizer (30522 tokens, [SEP] as EOS): 21M
parameters, a twentieth of Qwen2.5-0.5B; memory and time do not depend on the weights' values. --model loads a
real checkpoint instead (e.g. --model Qwen/Qwen2.5-0.5B --dtype bfloat16 --accelerator gpu).
Variants: full (every weight trains) and lora (r=16, alpha 32 on the 7 projections of every layer), each also with
gradient checkpointing (_checkpointing). Each variant runs in fresh processes, variants alternate over --repeats
rounds. Step time: the median and the fastest step after one warm-up step (on a shared machine the fastest is the
one least slowed by other work). Memory, from a separate 2-step process per variant and round: on CPU the process's
peak RSS, and that peak minus the RSS before fit (what training adds to the loaded model); on GPU
torch.cuda.max_memory_allocated, and that peak minus the memory allocated before fit.
The CPU memory processes run with MALLOC_MMAP_THRESHOLD_=65536: every allocation above 64 KiB is its own mapping
and goes back to the OS when freed, so RSS follows the live tensors. With glibc's default (a threshold that grows
to 32 MiB) freed activations stay in the heap, and peak RSS then ranked LoRA above full fine-tuning here. It also
slows the backward pass by page faults (1.7 s against 1.1 s here), hence separate processes for the timing.
"""

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import tempfile
from pathlib import Path

import torch
from train_throughput import StepTimes, demo_source, timed_trainer

BATCH, GROUP, QUERY_LENGTH, PASSAGE_LENGTH = 8, 4, 32, 128
LORA = {
    "r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.0,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}
VARIANTS = {
    "full": {},
    "full_checkpointing": {"gradient_checkpointing": True},
    "lora": {"lora": LORA},
    "lora_checkpointing": {"lora": LORA, "gradient_checkpointing": True},
}


def random_decoder(folder: Path) -> str:
    """Save a randomly initialised Qwen2 decoder with the bundled MiniLM tokenizer in ``folder``; return its path."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2Model

    from sycl.config import bundled_minilm_path

    tokenizer = AutoTokenizer.from_pretrained(bundled_minilm_path())
    tokenizer.eos_token = "[SEP]"  # BERT's tokenizer already closes every text with it
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=384,
        num_hidden_layers=6,
        num_attention_heads=6,
        num_key_value_heads=2,
        intermediate_size=1024,
        max_position_embeddings=512,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    Qwen2Model(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def current_memory_mb(accelerator: str) -> float:
    if accelerator == "gpu":
        return torch.cuda.memory_allocated() / 2**20
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def peak_memory_mb(accelerator: str) -> float:
    if accelerator == "gpu":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_run(name: str, model: str, dtype: str | None, steps: int, accelerator: str, queue) -> None:
    import lightning

    from sycl.data.datamodule import MultiLevelDataModule
    from sycl.losses import InfoNCELoss
    from sycl.models import DualEncoder
    from sycl.training import RetrieverModule

    lightning.seed_everything(0)
    times = StepTimes()

    encoder = DualEncoder.from_pretrained(
        model,
        pooling="last",
        normalize=True,
        append_eos=True,
        padding_side="left",
        query_max_length=QUERY_LENGTH,
        passage_max_length=PASSAGE_LENGTH,
        dtype=dtype,
        **VARIANTS[name],
    )
    module = RetrieverModule(encoder, InfoNCELoss(temperature=0.05), lr=1e-4)
    datamodule = MultiLevelDataModule(
        [demo_source()],
        group_size=GROUP,
        batch_size=BATCH,
        selection="most_relevant",
        tokenization=encoder.tokenization,
    )
    trainer = timed_trainer(times, steps, accelerator)
    if accelerator == "gpu":
        encoder.cuda()
        torch.cuda.reset_peak_memory_stats()
    before_fit = current_memory_mb(accelerator)
    trainer.fit(module, datamodule=datamodule)
    trainable = sum(p.numel() for p in encoder.parameters() if p.requires_grad)
    total = sum(p.numel() for p in encoder.parameters())
    result = {
        "seconds": times.seconds,
        "peak_mb": peak_memory_mb(accelerator),
        "before_fit_mb": before_fit,
        "trainable": trainable,
        "total": total,
    }
    queue.put(json.dumps(result))


def run_variant(name: str, model: str, args, steps: int, mmap_threshold: str | None) -> dict:
    """One run of ``name`` in a fresh process (glibc reads MALLOC_MMAP_THRESHOLD_ as the process starts)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=one_run, args=(name, model, args.dtype, steps, args.accelerator, queue))
    previous = os.environ.pop("MALLOC_MMAP_THRESHOLD_", None)
    if mmap_threshold:
        os.environ["MALLOC_MMAP_THRESHOLD_"] = mmap_threshold
    try:
        process.start()
    finally:
        os.environ.pop("MALLOC_MMAP_THRESHOLD_", None)
        if previous is not None:
            os.environ["MALLOC_MMAP_THRESHOLD_"] = previous
    process.join()
    if process.exitcode != 0 or queue.empty():
        raise SystemExit(f"variant {name} failed (exit code {process.exitcode}); its error is above")
    return json.loads(queue.get())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a decoder's hub id or folder; default: a random Qwen2")
    parser.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"], help="weights' dtype")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per run (one warm-up step besides)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--accelerator", choices=["cpu", "gpu"], default="cpu", help="gpu: the first CUDA device")
    args = parser.parse_args()

    timed = {name: [] for name in args.variants}
    measured = {name: [] for name in args.variants}
    with tempfile.TemporaryDirectory() as scratch:
        model = args.model or random_decoder(Path(scratch))
        for _ in range(args.repeats):
            for name in args.variants:
                timed[name].append(run_variant(name, model, args, args.steps + 1, mmap_threshold=None))
                threshold = "65536" if args.accelerator == "cpu" else None
                measured[name].append(run_variant(name, model, args, 2, mmap_threshold=threshold))
    memory = "GPU memory" if args.accelerator == "gpu" else "RSS"
    print(
        f"model {args.model or 'random Qwen2 (6 x 384)'}, dtype {args.dtype or 'its own'}, batch {BATCH} queries x "
        f"{GROUP} passages, max lengths {QUERY_LENGTH}/{PASSAGE_LENGTH}, {torch.get_num_threads()} threads, "
        f"{args.repeats} runs x {args.steps} timed steps per variant"
    )
    columns = f"step s (median) | fastest | queries/s | peak {memory} MB | peak - before fit MB"
    print(f"| variant | trainable params | {columns} |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    step, fastest = {}, {}
    for name in args.variants:
        runs = measured[name]
        seconds = [s for run in timed[name] for s in run["seconds"][1:]]
        step[name], fastest[name] = statistics.median(seconds), min(seconds)
        peak = max(run["peak_mb"] for run in runs)
        added = max(run["peak_mb"] - run["before_fit_mb"] for run in runs)
        share = runs[0]["trainable"] / runs[0]["total"]
        trainable = f"{runs[0]['trainable'] / 1e6:.2f}M ({100 * share:.1f}%)"
        print(
            f"| {name} | {trainable} | {step[name]:.2f} | {fastest[name]:.2f} | {BATCH / step[name]:.2f} | {peak:.0f} "
            f"| {added:.0f} |"
        )
    for name in args.variants:
        if name != "full" and "full" in step:
            print(
                f"step time {name} / full: {step[name] / step['full']:.2f} (median), "
                f"{fastest[name] / fastest['full']:.2f} (fastest)"
            )


if __name__ == "__main__":
    main()

"""Time (forward + backward) of every loss as the batch grows, and the Wasserstein loss's growth exponent.

    python benchmarks/loss_cost.py [--batch-sizes 16 32 64 128 256 512] [--group-sizes 4 8] [--repeats 5]

The Wasserstein loss never forms a (B*K) x (B*K) matrix: its largest intermediates are [B, B*K] and
[B, B], so time should grow about as B^2 * K (plus an O(B^3) eigensolve), and memory as B^2 * K. Peer:
the naive full-covariance computation (torch.linalg.eigvalsh of the (B*K) x (B*K) matrix product, what a
direct implementation of the formula costs), timed at the sizes where it fits in a few seconds. Last line:
ratio_vs_full_covariance_at_B64_K4: full / ours (higher is better).
"""

import argparse
import math
import statistics
import time
from pathlib import Path

import torch
import yaml
from hydra.utils import instantiate

from sycl.config import repo_root
from sycl.losses import expand_group_labels


def time_loss(loss, batch_size: int, group_size: int, repeats: int) -> float:
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(batch_size, batch_size * group_size, generator=generator, requires_grad=True)
    labels = torch.randint(0, 4, (batch_size, group_size), generator=generator).float()
    labels[:, 0] = 3.0
    times = []
    for _ in range(repeats + 1):  # the first run warms up
        start = time.perf_counter()
        loss(scores, labels).backward()
        times.append(time.perf_counter() - start)
        scores.grad = None
    return statistics.median(times[1:])


def full_covariance_w2(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The formula done directly: (B*K) x (B*K) covariances and their square roots via eigh."""
    predicted = torch.softmax(scores.double(), 1)
    target = torch.softmax(expand_group_labels(labels.double(), scores.shape[1]), 1)
    sigma_p, sigma_t = torch.cov(predicted.T), torch.cov(target.T)
    values, vectors = torch.linalg.eigh(sigma_p)
    root_p = vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T
    inner = torch.linalg.eigvalsh(root_p @ sigma_t @ root_p).clamp_min(0)
    mean = (predicted.mean(0) - target.mean(0)).pow(2).sum()
    return mean + sigma_p.trace() + sigma_t.trace() - 2 * (inner + 1e-15).sqrt().sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64, 128, 256, 512])
    parser.add_argument("--group-sizes", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    loss_dir = Path(repo_root()) / "conf" / "loss"
    losses = {}
    for path in sorted(loss_dir.glob("*.yaml")):
        config = path.read_text().replace("${temperature}", "0.05")
        losses[path.stem] = instantiate(yaml.safe_load(config))
    print(f"threads: {torch.get_num_threads()}; milliseconds per forward+backward (median of {args.repeats})")
    header = "| loss | K | " + " | ".join(f"B={b}" for b in args.batch_sizes) + " |"
    print(header)
    print("|---|---|" + "---:|" * len(args.batch_sizes))
    wasserstein_times = {}
    for name, loss in losses.items():
        for group_size in args.group_sizes:
            row = []
            for batch_size in args.batch_sizes:
                seconds = time_loss(loss, batch_size, group_size, args.repeats)
                row.append(f"{seconds * 1000:.1f}")
                if name == "wasserstein":
                    wasserstein_times[(batch_size, group_size)] = seconds
            print(f"| {name} | {group_size} | " + " | ".join(row) + " |")
    for group_size in args.group_sizes:
        small, large = args.batch_sizes[-3], args.batch_sizes[-1]
        exponent = math.log(wasserstein_times[(large, group_size)] / wasserstein_times[(small, group_size)]) / math.log(
            large / small
        )
        print(f"wasserstein growth exponent in B (B={small}..{large}, K={group_size}): {exponent:.2f}")
    ours = time_loss(losses["wasserstein"], 64, 4, args.repeats)
    full = time_loss(full_covariance_w2, 64, 4, max(1, args.repeats // 2))
    print(f"full-covariance W2 at B=64, K=4: {full * 1000:.1f} ms; ours {ours * 1000:.1f} ms")
    print(f"ratio_vs_full_covariance_at_B64_K4: {full / ours:.1f}")


if __name__ == "__main__":
    main()

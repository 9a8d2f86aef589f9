"""Evaluation spread over several processes (GPUs or nodes): each encodes and searches its shard of the corpus.

    python eval.py evaluation.devices=8                                  # 8 GPUs of one node
    srun python eval.py evaluation.devices=8 evaluation.num_nodes=4      # SLURM: 32 GPUs (one task per GPU)

Launched as training is, by Lightning (``lightning.fabric.Fabric`` with the DDP strategy: torchrun, SLURM, or its
own launcher re-running the command once per extra local process). Every process reads the split's ids and
encodes the queries; process r of W holds the texts of, encodes and searches every W-th passage from the r-th
(its slice, cached on its own, so a killed run re-encodes only the slices it had not finished). A stride rather
than a contiguous block: a process learns which passages are its own while it reads the corpus, before it knows
the corpus's size, so it spills only their texts to disk (``load_split``'s ``keep_text``).

The hits of every slice are gathered to every process and merged, each slice having returned every passage scoring
as high as its own ``depth``-th: the overall ``depth``-th score is at least each slice's, so no passage that ties
or beats it is missing, and the ranking equals one process's (``RetrievalEvaluator.rank`` orders ties by passage
id, as trec_eval does).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class Shards:
    """The processes an evaluation is spread over; ``fabric`` is a launched ``lightning.fabric.Fabric``."""

    fabric: object

    @property
    def rank(self) -> int:
        return self.fabric.global_rank

    @property
    def world_size(self) -> int:
        return self.fabric.world_size

    @property
    def is_main(self) -> bool:
        """The process that writes results files, prints and logs to the loggers."""
        return self.rank == 0

    def owns(self, row: int) -> bool:
        """Whether the ``row``-th passage (in file order) is in this process's slice: every ``world_size``-th from
        the ``rank``-th; slices differ by at most one passage."""
        return row % self.world_size == self.rank

    def global_rows(self, local: torch.Tensor) -> torch.Tensor:
        """Rows of the whole corpus for rows of this process's slice (any shape of int64)."""
        return local * self.world_size + self.rank

    def gather_hits(self, scores: torch.Tensor, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every process's hits for the same queries, side by side.

        scores, indices: [Q, k_r] on the CPU, k_r this process's number of hits (it may differ between processes).
        Returns scores and indices [Q, W * k_max] on the CPU, with index -1 (score -inf) where a process had fewer.
        """
        width = int(self.fabric.all_gather(torch.tensor(scores.shape[1], device=self.fabric.device)).max())
        padding = width - scores.shape[1]
        scores = F.pad(scores.float(), (0, padding), value=float("-inf")).to(self.fabric.device)
        indices = F.pad(indices, (0, padding), value=-1).to(self.fabric.device)
        # [W, Q, width] -> [Q, W * width]
        all_scores = self.fabric.all_gather(scores).permute(1, 0, 2).reshape(scores.shape[0], -1)
        all_indices = self.fabric.all_gather(indices).permute(1, 0, 2).reshape(indices.shape[0], -1)
        return all_scores.cpu(), all_indices.cpu()

    def barrier(self) -> None:
        self.fabric.barrier()


def launch(devices: int, num_nodes: int = 1, accelerator: str = "auto") -> Shards | None:
    """Start (or join) the ``devices * num_nodes`` evaluation processes; None for one process.

    Lightning's launcher re-runs the command line for each extra process on this node (as for ``trainer=ddp``);
    under torchrun or SLURM the processes are already there and only join. On CPUs the processes talk over gloo.
    """
    if devices * num_nodes <= 1:
        return None
    from lightning.fabric import Fabric

    fabric = Fabric(accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy="ddp")
    fabric.launch()
    return Shards(fabric)

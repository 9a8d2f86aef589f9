"""Seeded, shardable, resumable batches of (index, epoch) pairs."""

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochBatchSampler(Sampler[list[tuple[int, int]]]):
    """Shuffles once per epoch with ``seed + epoch`` and yields this rank's share of each global batch.

    Each global batch holds ``batch_size * num_replicas`` items; rank r takes the r-th slice, so with
    all-gathered embeddings every device sees the same global batch as a single process would.
    ``skip_batches(n)`` drops the first n batches of the next epoch once: how a run resumed mid-epoch
    continues with the batches it had not seen.

    With ``lengths`` (one per item), batches are length-bucketed: the shuffled order is cut into
    windows of ``bucket_batches`` global batches, each window is sorted by length and cut into
    batches, and the batches are shuffled again. Items in a batch then have similar lengths, so
    per-batch padding shrinks, while every epoch still visits items in a fresh, seeded order.
    """

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
        lengths: list[int] | None = None,
        bucket_batches: int = 50,
    ):
        super().__init__()
        self.num_items, self.batch_size, self.seed = num_items, batch_size, seed
        self.shuffle, self.drop_last = shuffle, drop_last
        self.num_replicas, self.rank = num_replicas, rank
        if lengths is not None and len(lengths) != num_items:
            raise ValueError(f"got {len(lengths)} lengths for {num_items} items")
        self.lengths, self.bucket_batches = lengths, bucket_batches
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def skip_batches(self, count: int) -> None:
        self._skip = count

    def _bucket_by_length(self, order: list[int], global_batch: int, generator: torch.Generator) -> list[int]:
        window = global_batch * self.bucket_batches
        batches = []
        for start in range(0, len(order), window):
            ordered = sorted(order[start : start + window], key=lambda i: self.lengths[i])
            batches += [ordered[b : b + global_batch] for b in range(0, len(ordered), global_batch)]
        # Full batches in a seeded random order; a partial batch (if any) stays last so drop_last drops it.
        full = [b for b in batches if len(b) == global_batch]
        partial = [b for b in batches if len(b) < global_batch]
        shuffled = [full[i] for i in torch.randperm(len(full), generator=generator).tolist()]
        return [i for batch in shuffled + partial for i in batch]

    def __len__(self) -> int:
        global_batch = self.batch_size * self.num_replicas
        full, rest = divmod(self.num_items, global_batch)
        return full if self.drop_last or rest == 0 else full + 1

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        global_batch = self.batch_size * self.num_replicas
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_items, generator=generator).tolist()
            if self.lengths is not None:
                order = self._bucket_by_length(order, global_batch, generator)
        else:
            order = list(range(self.num_items))
        skip, self._skip = self._skip, 0
        for batch_index in range(skip, len(self)):
            members = order[batch_index * global_batch : (batch_index + 1) * global_batch]
            mine = members[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
            yield [(index, self.epoch) for index in mine]

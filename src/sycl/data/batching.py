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
    ):
        super().__init__()
        self.num_items, self.batch_size, self.seed = num_items, batch_size, seed
        self.shuffle, self.drop_last = shuffle, drop_last
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def skip_batches(self, count: int) -> None:
        self._skip = count

    def __len__(self) -> int:
        global_batch = self.batch_size * self.num_replicas
        full, rest = divmod(self.num_items, global_batch)
        return full if self.drop_last or rest == 0 else full + 1

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_items, generator=generator).tolist()
        else:
            order = list(range(self.num_items))
        global_batch = self.batch_size * self.num_replicas
        skip, self._skip = self._skip, 0
        for batch_index in range(skip, len(self)):
            members = order[batch_index * global_batch : (batch_index + 1) * global_batch]
            mine = members[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
            yield [(index, self.epoch) for index in mine]

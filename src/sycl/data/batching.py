"""Seeded, shardable, resumable batches of (index, epoch) pairs."""

from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, Sampler


class EpochBatchSampler(Sampler[list[tuple]]):
    """Shuffles once per epoch with ``seed + epoch`` and yields this rank's share of each global batch.

    Each global batch holds ``batch_size * num_replicas`` items; rank r takes the r-th slice, so with
    all-gathered embeddings every device sees the same global batch as a single process would.
    ``skip_batches(n)`` drops the first n batches of the next epoch once: how a run resumed mid-epoch
    continues with the batches it had not seen.

    Without ``drop_last`` the last global batch may be short, and slicing it would leave some ranks
    an empty or smaller share, which the all-gather cannot take. With ``pad_shares`` (validation) every
    rank gets an equal, non-empty share and the sampler yields (index, epoch, valid) triples, padding
    marked valid=False; wrap the dataset in ``PaddedShareDataset`` to serve them.

    With ``lengths`` (one per item), batches are length-bucketed: the shuffled order is cut into
    windows of ``bucket_batches`` global batches, each window is sorted by length and cut into
    batches, and the batches are shuffled again. Items in a batch then have similar lengths, so
    per-batch padding shrinks, while every epoch still visits items in a fresh, seeded order.

    The trainer sets the epoch (see ``sampler``) unless ``follow_epochs`` is off: validation stays at epoch 0, so
    its random group draws are the same every epoch and ``val/loss`` compares epochs on the same groups.
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
        pad_shares: bool = False,
        follow_epochs: bool = True,
    ):
        super().__init__()
        self.num_items, self.batch_size, self.seed = num_items, batch_size, seed
        self.shuffle, self.drop_last = shuffle, drop_last
        self.num_replicas, self.rank = num_replicas, rank
        if lengths is not None and len(lengths) != num_items:
            raise ValueError(f"got {len(lengths)} lengths for {num_items} items")
        self.lengths, self.bucket_batches = lengths, bucket_batches
        self.pad_shares = pad_shares
        self.follow_epochs = follow_epochs
        self.epoch = 0
        self._skip = 0

    @property
    def sampler(self) -> "EpochBatchSampler | None":
        """Itself, when it follows the training epochs: how Lightning finds ``set_epoch``.

        Lightning calls ``set_epoch`` on ``dataloader.sampler`` and ``dataloader.batch_sampler.sampler``, never on
        a batch sampler (Lightning #13316); posing as its own inner sampler puts it on that path, which every
        strategy and a resumed run take at every epoch start. ``follow_epochs=False`` (validation) stays out of it.
        """
        return self if self.follow_epochs else None

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose order and group draws the next ``iter()`` yields.

        Lightning sets it at every epoch start (through ``sampler``); a resumed run's datamodule sets it when it
        builds the loader, because a resumed fit calls ``iter()`` before its first epoch start.
        """
        self.epoch = epoch

    def skip_batches(self, count: int) -> None:
        """Leave out the first ``count`` batches of the next ``iter()`` only: the rest of an interrupted epoch."""
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
            if self.pad_shares:
                yield self._padded_share(members)
                continue
            mine = members[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
            yield [(index, self.epoch) for index in mine]

    def _padded_share(self, members: list[int]) -> list[tuple[int, int, bool]]:
        """This rank's (index, epoch, valid) share of a global batch, as long as every other rank's.

        A global batch short of ``batch_size * num_replicas`` (the last one, without ``drop_last``) is
        split into contiguous shares of ceil(n / num_replicas); a short or empty share is completed
        with copies of the batch's first item, marked valid=False. All-gathers need equal shapes on
        every rank, and contiguous shares keep the gathered valid rows in the global batch's order.
        """
        share = -(-len(members) // self.num_replicas)
        mine = members[self.rank * share : (self.rank + 1) * share]
        padding = [members[0]] * (share - len(mine))
        return [(index, self.epoch, True) for index in mine] + [(index, self.epoch, False) for index in padding]


class PaddedShareDataset(Dataset):
    """Serves the (index, epoch, valid) triples of an ``EpochBatchSampler(pad_shares=True)``.

    Item (index, epoch, valid) is the wrapped dataset's item (index, epoch) with "valid": valid added,
    which ``GroupCollator`` turns into the batch's ``valid`` mask.
    """

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int, bool]) -> dict:
        index, epoch, valid = key
        return {**self.dataset[(index, epoch)], "valid": valid}

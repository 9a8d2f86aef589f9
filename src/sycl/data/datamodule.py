"""The LightningDataModule: sources in, batches of graded groups out."""

import logging

from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from sycl import hub
from sycl.data.batching import EpochBatchSampler, PaddedShareDataset
from sycl.data.collator import GroupCollator
from sycl.data.dataset import GroupedQueryDataset
from sycl.data.groups import GroupSampler
from sycl.data.sources import SourceSpec, load_sources
from sycl.models.tokenization import QueryPassageTokenizer

log = logging.getLogger(__name__)


class MultiLevelDataModule(LightningDataModule):
    """Mixes training sources (synthetic multi-level lists, real positives, mined negatives) into groups.

    ``sources`` and ``val_sources`` are lists of ``SourceSpec`` fields (see ``sycl.data.sources`` for
    the filter, relabel and merge rules; ``bad_rows="skip"`` skips and counts malformed rows instead of
    stopping on the first). ``train_fraction`` keeps a seeded subset of the training
    queries (data-size ablations); ``length_bucketing`` batches queries of similar length together
    (less padding, faster steps; it also changes which in-batch negatives meet). ``tokenization``
    comes from the model, so the DataLoader workers tokenize with the model's prefixes and max lengths.
    """

    def __init__(
        self,
        sources: list[dict],
        mode: str = "multilevel",
        group_size: int = 4,
        selection: str = "random",
        positive_threshold: float = 1.0,
        short_group_policy: str = "repeat",
        on_conflict: str = "last",
        bad_rows: str = "error",
        batch_size: int = 16,
        num_workers: int = 0,
        seed: int = 0,
        val_sources: list[dict] | None = None,
        train_fraction: float = 1.0,
        length_bucketing: bool = False,
        tokenization: QueryPassageTokenizer | None = None,
    ):
        super().__init__()
        self.source_specs = [SourceSpec(**dict(spec)) for spec in sources]
        self.val_source_specs = [SourceSpec(**dict(spec)) for spec in val_sources or []]
        self.group_options = dict(
            mode=mode, group_size=group_size, selection=selection, positive_threshold=positive_threshold, seed=seed
        )
        self.short_group_policy, self.on_conflict, self.bad_rows = short_group_policy, on_conflict, bad_rows
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        if not 0.0 < train_fraction <= 1.0:
            raise ValueError(f"data.train_fraction={train_fraction} must be in (0, 1]")
        self.train_fraction, self.length_bucketing = train_fraction, length_bucketing
        self.tokenization = tokenization
        self.train_dataset: GroupedQueryDataset | None = None
        self.val_dataset: GroupedQueryDataset | None = None
        self.hub_files_fetched = False

    def prepare_data(self) -> None:
        """Download the sources' ``hf://`` files into the HF cache.

        Lightning calls this on one process per node (local rank 0) while the others wait, so a large file is
        downloaded once, not once per rank; ``setup`` then reads the cache on every rank.
        """
        if not self.hub_files_fetched:  # train.py prepares before fit, and fit prepares again
            for spec in self.source_specs + self.val_source_specs:
                spec.fetched()
            self.hub_files_fetched = True

    def hub_commits(self) -> dict[str, str]:
        """{hf:// URI: commit} of every hub file the sources name that was fetched: the versions a run read."""
        uris = {
            getattr(spec, key)
            for spec in self.source_specs + self.val_source_specs
            for key in ("corpus", "queries", "qrels")
            if hub.is_hub_uri(getattr(spec, key))
        }
        return {uri: commit for uri, commit in hub.fetched_files().items() if uri in uris}

    def setup(self, stage: str | None = None) -> None:
        """Read and check every source; any bad input fails here, before the first step."""
        if self.train_dataset is None:
            self.train_dataset = self._dataset(self.source_specs)
            if self.train_fraction < 1.0:
                self.train_dataset.keep_fraction(self.train_fraction, seed=self.seed)
            if len(self.train_dataset) < self.batch_size:
                log.warning("only %d training queries for data.batch_size=%d", len(self.train_dataset), self.batch_size)
        if self.val_dataset is None and self.val_source_specs:
            self.val_dataset = self._dataset(self.val_source_specs)

    def _dataset(self, specs: list[SourceSpec]) -> GroupedQueryDataset:
        # Once prepare_data has run (here, or under a Trainer on this node's local rank 0), read the cache only: no
        # process but local rank 0 ever talks to the Hub. Called directly (a notebook), fetch as needed.
        local_only = self.hub_files_fetched or self.trainer is not None
        pool = load_sources(
            [spec.fetched(local_only) for spec in specs], on_conflict=self.on_conflict, bad_rows=self.bad_rows
        )
        return GroupedQueryDataset(GroupSampler(pool, **self.group_options), self.short_group_policy)

    def train_dataloader(self) -> DataLoader:
        lengths = self.train_dataset.lengths() if self.length_bucketing else None
        # Lightning's overfit_batches (debug=overfit) turns off a shuffling sampler, which a batch sampler is not:
        # staying at epoch 0 trains the same batches, with the same group draws, in every epoch.
        overfit = self.trainer is not None and self.trainer.overfit_batches > 0
        sampler = EpochBatchSampler(
            len(self.train_dataset),
            self.batch_size,
            seed=self.seed,
            shuffle=True,
            drop_last=True,
            lengths=lengths,
            follow_epochs=not overfit,
            **self._shard(),
        )
        epoch, done = self._resume_position()
        sampler.set_epoch(epoch)
        sampler.skip_batches(done)
        return self._loader(self.train_dataset, sampler)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_dataset is None:
            return []
        sampler = EpochBatchSampler(
            len(self.val_dataset),
            self.batch_size,
            seed=self.seed,
            shuffle=False,
            drop_last=False,
            follow_epochs=False,
            pad_shares=True,
            **self._shard(),
        )
        return self._loader(PaddedShareDataset(self.val_dataset), sampler)

    def _loader(self, dataset: Dataset, sampler: EpochBatchSampler) -> DataLoader:
        if self.tokenization is None:
            raise ValueError("MultiLevelDataModule needs the model's tokenization (train.py passes it in)")
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=GroupCollator(self.tokenization),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def _shard(self) -> dict:
        trainer = self.trainer
        return {"num_replicas": trainer.world_size, "rank": trainer.global_rank} if trainer else {}

    def _resume_position(self) -> tuple[int, int]:
        """(epoch, batches of it already trained) where this fit's first training batch comes from.

        Read from the fit loop's progress, which a resumed fit has restored from its checkpoint before it asks
        for the loader (and which is all zeros in a fresh one). It must be right here, not only at the next
        epoch start: a resumed fit calls ``iter()`` on the loader before that, and workers draw batches then.
        """
        trainer = self.trainer
        if trainer is None:
            return 0, 0
        epochs = trainer.fit_loop.epoch_progress.current
        batches = trainer.fit_loop.epoch_loop.batch_progress
        if epochs.started == epochs.processed:
            # Between epochs (a fresh fit, or a checkpoint from on_train_epoch_end, which comes after the
            # epoch's "processed" count went up): the next epoch starts from its first batch.
            return epochs.processed, 0
        if batches.is_last_batch:
            # Saved after the epoch's last batch (a step checkpoint, or one at the end of its validation): the
            # epoch's training is done, though not yet counted as processed. Its validation and end may still run
            # first (sycl.training.checkpoint_io.finish_last_batch), drawing no batch: the next one is the next epoch's.
            return epochs.processed + 1, 0
        # Saved in on_train_batch_end: "processed" counts the batch the checkpoint was written after.
        return epochs.processed, batches.current.processed

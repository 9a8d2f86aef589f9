"""Real `train()` runs: every epoch gets its own batches and group draws, and a resume from any checkpoint
continues exactly where the run stopped (same remaining batches, same final weights)."""

import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from lightning import Callback

from sycl.data.batching import EpochBatchSampler
from sycl.models import DualEncoder
from sycl.training.run import train
from tests.conftest import compose_train_config

QUERIES = [f"a{i:02d}" for i in range(1, 9)]
# EpochBatchSampler(8, 4, seed=42) per epoch, as indices into QUERIES: the epoch-never-set case's right value.
EXPECTED_ORDERS = {
    0: [[6, 3, 0, 7], [2, 1, 4, 5]],
    1: [[4, 5, 7, 1], [3, 2, 6, 0]],
    2: [[4, 7, 3, 2], [1, 5, 6, 0]],
}


class StepRecorder(Callback):
    """Appends each training step (global step, epoch, query ids, labels) to ``<folder>/rank<r>.jsonl``;
    keeps the encoder's weights after the latest step in ``<folder>/final_rank<r>.pt``."""

    def __init__(self, folder: str):
        self.folder = Path(folder)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {
            "step": trainer.global_step,
            "epoch": trainer.current_epoch,
            "qids": batch["query_ids"],
            "labels": batch["labels"].tolist(),
        }
        with open(self.folder / f"rank{trainer.global_rank}.jsonl", "a") as log:
            log.write(json.dumps(record) + "\n")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        torch.save(pl_module.encoder.state_dict(), self.folder / f"final_rank{trainer.global_rank}.pt")


class CrashBefore(Callback):
    """Raises before global step ``step``, as a job that dies there would (its checkpoints stay on disk)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise RuntimeError(f"simulated crash before global step {self.step}")


def recorded_steps(folder: Path, rank: int = 0) -> list[dict]:
    return [json.loads(line) for line in (folder / f"rank{rank}.jsonl").read_text().splitlines()]


def final_encoder_weights(folder: Path, rank: int = 0) -> dict:
    return torch.load(folder / f"final_rank{rank}.pt", weights_only=True)


@pytest.fixture(scope="session")
def graded_queries(tmp_path_factory) -> Path:
    """8 queries a01..a08, each with 4 passages graded 3/2/1/0, as a BEIR-style folder."""
    folder = tmp_path_factory.mktemp("graded_queries")
    (folder / "qrels").mkdir()
    queries, corpus, qrels = [], [], ["query-id\tcorpus-id\tscore"]
    for number, query_id in enumerate(QUERIES):
        queries.append({"_id": query_id, "text": f"question number {number} about topic {query_id}"})
        for level in (3, 2, 1, 0):
            passage_id = f"{query_id}-L{level}"
            corpus.append({"_id": passage_id, "title": "", "text": f"passage on topic {query_id} at level {level}"})
            qrels.append(f"{query_id}\t{passage_id}\t{level}")
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (folder / "corpus.jsonl").write_text("".join(json.dumps(p) + "\n" for p in corpus))
    (folder / "qrels" / "train.tsv").write_text("\n".join(qrels) + "\n")
    return folder


def graded_run_overrides(model: str, data: Path, batch_size: int, epochs: int, record: Path) -> list[str]:
    """Tiny model on ``graded_queries``, groups of 2 drawn at random, a checkpoint after every step, no benchmark."""
    source = (
        f"{{name: tiny, corpus: {data}/corpus.jsonl, queries: {data}/queries.jsonl, qrels: {data}/qrels/train.tsv}}"
    )
    return [
        f"model.name_or_path={model}",
        "model.query_max_length=16",
        "model.passage_max_length=32",
        "logger=csv",
        "trainer.enable_progress_bar=false",
        f"data.sources=[{source}]",
        "data.val_sources=null",
        f"data.batch_size={batch_size}",
        "data.group_size=2",
        "data.selection=random",
        f"trainer.max_epochs={epochs}",
        "callbacks.model_checkpoint.every_n_train_steps=1",
        "~benchmark",
        "+callbacks.recorder._target_=tests.test_training_loop.StepRecorder",
        f"+callbacks.recorder.folder={record}",
    ]


@pytest.mark.parametrize("num_workers", [0, 2], ids=["in_process", "persistent_workers"])
def test_every_epoch_has_its_own_batches_and_group_draws(tmp_path, tiny_model_path, graded_queries, num_workers):
    overrides = graded_run_overrides(tiny_model_path, graded_queries, 4, 3, tmp_path / "record")
    cfg = compose_train_config(tmp_path / "run", overrides + [f"data.num_workers={num_workers}"])
    train(cfg)

    steps = recorded_steps(tmp_path / "record")
    assert [s["step"] for s in steps] == list(range(6))
    sampler = EpochBatchSampler(8, 4, seed=cfg.data.seed)
    datamodule = instantiate(cfg.data, _partial_=True)(tokenization=None)
    datamodule.setup("fit")
    for epoch, expected in EXPECTED_ORDERS.items():
        trained = [s for s in steps if s["epoch"] == epoch]
        assert [s["qids"] for s in trained] == [[QUERIES[i] for i in batch] for batch in expected]
        sampler.set_epoch(epoch)
        assert [[i for i, _ in batch] for batch in sampler] == expected
        # Each query's group is the draw for this epoch, not epoch 0's.
        for step in trained:
            for query_id, labels in zip(step["qids"], step["labels"], strict=True):
                item = datamodule.train_dataset[(QUERIES.index(query_id), epoch)]
                assert labels == item["labels"], f"epoch {epoch}, {query_id}"
    labels_by_epoch = [
        {
            query: labels
            for s in steps
            if s["epoch"] == epoch
            for query, labels in zip(s["qids"], s["labels"], strict=True)
        }
        for epoch in EXPECTED_ORDERS
    ]
    assert labels_by_epoch[0] != labels_by_epoch[1] != labels_by_epoch[2]


def resume_overrides(model: str, data: Path, record: Path, validation: bool) -> list[str]:
    """8 queries in batches of 2: 4 steps per epoch, 2 epochs; ``max_steps`` too, the setting that
    makes Lightning resume epoch-end checkpoints differently; optionally a validation loop."""
    overrides = graded_run_overrides(model, data, 2, 2, record) + ["trainer.max_steps=8"]
    if validation:
        source = (
            f"{{name: dev, corpus: {data}/corpus.jsonl, queries: {data}/queries.jsonl, qrels: {data}/qrels/train.tsv}}"
        )
        overrides.append(f"data.val_sources=[{source}]")
    return overrides


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_model_path, graded_queries):
    """The uninterrupted run of each resume setting, trained once: setting -> its record folder."""
    runs = {}

    def run(validation: bool) -> Path:
        if validation not in runs:
            folder = tmp_path_factory.mktemp("uninterrupted")
            train(
                compose_train_config(
                    folder / "run", resume_overrides(tiny_model_path, graded_queries, folder / "record", validation)
                )
            )
            runs[validation] = folder / "record"
        return runs[validation]

    return run


RESUMES = {
    "mid_epoch_last": (False, 3, "last.ckpt"),
    "epoch_end_last": (False, 4, "last.ckpt"),
    "epoch_end_best": (False, 4, "best-epoch=0-step=4.ckpt"),
    "validation_epoch_end_last": (True, 4, "last.ckpt"),
    "validation_epoch_end_best": (True, 4, "best-epoch=0-step=4.ckpt"),
}


@pytest.mark.parametrize("setting", RESUMES)
def test_resume_from_any_checkpoint_continues_where_the_run_stopped(
    tmp_path, tiny_model_path, graded_queries, uninterrupted, setting
):
    validation, crash_step, checkpoint = RESUMES[setting]
    overrides = resume_overrides(tiny_model_path, graded_queries, tmp_path / "crashed", validation)
    crash = ["+callbacks.crash._target_=tests.test_training_loop.CrashBefore", f"+callbacks.crash.step={crash_step}"]
    if checkpoint.startswith("best"):  # weights only by default: nothing to resume from
        crash.append("callbacks.best_checkpoint.save_weights_only=false")
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(compose_train_config(tmp_path / "crashed_run", overrides + crash))

    resumed = resume_overrides(tiny_model_path, graded_queries, tmp_path / "resumed", validation)
    ckpt_path = tmp_path / "crashed_run" / "checkpoints" / checkpoint
    train(compose_train_config(tmp_path / "resumed_run", resumed + [f"ckpt_path='{ckpt_path}'"]))

    straight = uninterrupted(validation)
    expected = recorded_steps(straight)[crash_step:]
    assert recorded_steps(tmp_path / "resumed") == expected  # same steps, epochs, batches and group draws
    final, reference = final_encoder_weights(tmp_path / "resumed"), final_encoder_weights(straight)
    for name, value in reference.items():
        assert torch.equal(final[name], value), f"{name} differs from the uninterrupted run"


class FirstEpochBest(Callback):
    """Logs ``harness/score`` = -epoch at every epoch end, so a checkpoint monitoring it finds epoch 0 best."""

    def on_train_epoch_end(self, trainer, pl_module):
        pl_module.log("harness/score", -float(trainer.current_epoch))


def first_epoch_best_overrides(model: str, data: Path, record: Path) -> list[str]:
    """2 epochs of 2 steps without validation, epoch 0 the best (``FirstEpochBest``): best-epoch=0.ckpt."""
    return graded_run_overrides(model, data, 4, 2, record) + [
        "+callbacks.first_epoch_best._target_=tests.test_training_loop.FirstEpochBest",
        "callbacks.best_checkpoint.monitor=harness/score",
        "callbacks.best_checkpoint.filename='best-{epoch}'",
        "~callbacks.retrieval_validation",
        "~callbacks.early_stopping",
    ]


def encoder_weights(checkpoint: Path) -> dict:
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    return {name.removeprefix("encoder."): value for name, value in state.items() if name.startswith("encoder.")}


def test_every_checkpoint_holds_the_state_it_is_named_after(tmp_path, tiny_model_path, graded_queries):
    overrides = first_epoch_best_overrides(tiny_model_path, graded_queries, tmp_path / "record") + [
        # No step checkpoint in so short a run: ModelCheckpoint writes last.ckpt when training ends,
        # after the export callback has run.
        "callbacks.model_checkpoint.every_n_train_steps=100",
    ]
    train(compose_train_config(tmp_path / "run", overrides))

    checkpoints = tmp_path / "run" / "checkpoints"
    assert sorted(path.name for path in checkpoints.iterdir()) == ["best-epoch=0.ckpt", "last.ckpt"]
    last = encoder_weights(checkpoints / "last.ckpt")
    best = encoder_weights(checkpoints / "best-epoch=0.ckpt")
    final = final_encoder_weights(tmp_path / "record")
    assert all(torch.equal(last[name], value) for name, value in final.items())  # the last step's weights
    assert not all(torch.equal(best[name], value) for name, value in final.items())
    exported = DualEncoder.from_pretrained(str(tmp_path / "run" / "model")).state_dict()
    assert exported.keys() == best.keys()
    assert all(torch.equal(exported[name], value) for name, value in best.items())  # the best epoch's weights
    # last.ckpt holds what a resume needs; the best checkpoint, by default, the weights alone.
    resumable = {"optimizer_states", "lr_schedulers", "callbacks"}
    assert resumable <= torch.load(checkpoints / "last.ckpt", map_location="cpu", weights_only=False).keys()
    assert not resumable & torch.load(checkpoints / "best-epoch=0.ckpt", map_location="cpu", weights_only=False).keys()


def test_a_run_resumes_from_last_ckpt_and_a_weights_only_checkpoint_says_to_use_it(
    tmp_path, tiny_model_path, graded_queries
):
    overrides = first_epoch_best_overrides(tiny_model_path, graded_queries, tmp_path / "record")
    train(compose_train_config(tmp_path / "run", overrides))
    checkpoints = tmp_path / "run" / "checkpoints"

    longer = overrides + ["trainer.max_epochs=3"]
    train(compose_train_config(tmp_path / "resumed", longer + [f"ckpt_path='{checkpoints / 'last.ckpt'}'"]))
    assert [step["epoch"] for step in recorded_steps(tmp_path / "record")] == [0, 0, 1, 1, 2, 2]
    best = checkpoints / "best-epoch=0.ckpt"
    with pytest.raises(ValueError, match=r"best-epoch=0\.ckpt holds the weights only.*checkpoints/last\.ckpt"):
        train(compose_train_config(tmp_path / "from_best", longer + [f"ckpt_path='{best}'"]))


def test_without_model_checkpoint_a_run_keeps_only_the_best_weights_and_exports_them(
    tmp_path, tiny_model_path, graded_queries
):
    overrides = first_epoch_best_overrides(tiny_model_path, graded_queries, tmp_path / "record")
    train(compose_train_config(tmp_path / "run", overrides + ["callbacks.model_checkpoint=null"]))
    checkpoints = tmp_path / "run" / "checkpoints"
    assert [path.name for path in checkpoints.iterdir()] == ["best-epoch=0.ckpt"]
    best = encoder_weights(checkpoints / "best-epoch=0.ckpt")
    exported = DualEncoder.from_pretrained(str(tmp_path / "run" / "model")).state_dict()
    assert all(torch.equal(exported[name], value) for name, value in best.items())


@pytest.mark.slow
def test_every_epoch_has_its_own_batches_on_two_processes(tmp_path, tiny_model_path, graded_queries):
    # Two ranks of batch 2 share each global batch of 4: together they train the one-process order.
    overrides = graded_run_overrides(tiny_model_path, graded_queries, 2, 3, tmp_path / "record") + [
        "trainer.devices=2",
        "trainer.strategy=ddp_spawn",
    ]
    train(compose_train_config(tmp_path / "run", overrides))
    for rank in (0, 1):
        steps = recorded_steps(tmp_path / "record", rank)
        for epoch, expected in EXPECTED_ORDERS.items():
            trained = [s["qids"] for s in steps if s["epoch"] == epoch]
            assert trained == [[QUERIES[i] for i in batch[2 * rank : 2 * rank + 2]] for batch in expected]

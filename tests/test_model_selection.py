"""Model selection on real held-out data: a fixed Cranfield dev/test split, the base model as the first candidate."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sycl.training.run import train
from tests.conftest import CONF_DIR, compose_train_config
from tests.test_train import StopAfter, tiny_overrides  # noqa: F401  (StopAfter is named in an override)

CRANFIELD = Path(CONF_DIR).parent / "data" / "cranfield"


def qrels_queries(path: Path) -> set[str]:
    return {line.split("\t")[0] for line in path.read_text().splitlines()[1:]}


def test_cranfield_dev_and_test_split_every_judged_query_once_and_are_rebuilt_by_split_py(tmp_path):
    dev, test = qrels_queries(CRANFIELD / "qrels" / "dev.tsv"), qrels_queries(CRANFIELD / "qrels" / "test.tsv")
    assert (len(dev), len(test)) == (75, 150) and not dev & test
    assert dev | test == qrels_queries(CRANFIELD / "qrels" / "all.tsv")
    # split.py is the only source of the split: rerun on a copy, it writes the shipped files byte for byte.
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "all.tsv").write_bytes((CRANFIELD / "qrels" / "all.tsv").read_bytes())
    subprocess.run([sys.executable, str(CRANFIELD / "split.py"), str(tmp_path)], check=True, capture_output=True)
    for name in ("qrels/dev.tsv", "qrels/test.tsv", "splits.json"):
        assert (tmp_path / name).read_bytes() == (CRANFIELD / name).read_bytes(), name
    assert json.loads((CRANFIELD / "splits.json").read_text())["dev"]["query_ids"] == sorted(dev, key=int)


def test_checkpoints_are_chosen_on_cranfield_dev_and_the_test_table_reports_its_test_split(tmp_path):
    cfg = compose_train_config(tmp_path, [])
    assert Path(cfg.callbacks.retrieval_validation.dataset) == CRANFIELD
    assert cfg.callbacks.retrieval_validation.split == "dev"
    assert cfg.callbacks.best_checkpoint.monitor == cfg.callbacks.early_stopping.monitor == "val/ndcg@10"
    assert {(Path(d.path).name, d.split) for d in cfg.benchmark.datasets} == {("test", "test"), ("cranfield", "test")}


def logged_validations(run_dir: Path) -> list[tuple[int, float]]:
    rows = csv.DictReader((run_dir / "csv" / "version_0" / "metrics.csv").open())
    return [(int(r["step"]), float(r["val/ndcg@10"])) for r in rows if r.get("val/ndcg@10")]


def test_the_base_model_is_scored_before_the_first_step_and_a_run_that_never_beats_it_warns(tmp_path, tiny_model_path):
    # lr 0: the weights never move, so no epoch can beat the base model on dev.
    overrides = tiny_overrides(tiny_model_path, steps=3) + ["module.lr=0", "~benchmark"]
    with pytest.warns(UserWarning, match="training never beat the base model on cranfield"):
        train(compose_train_config(tmp_path, overrides))
    (first_step, base), *after = logged_validations(tmp_path)
    assert first_step == 0 and after, "val/ndcg@10 must be logged at step 0 and after training steps"
    assert all(score == pytest.approx(base, abs=1e-6) for _, score in after)  # logged as float32 after step 0


def test_a_resumed_run_keeps_the_base_score_of_the_run_it_resumes(tmp_path, tiny_model_path):
    overrides = tiny_overrides(tiny_model_path, steps=4) + ["callbacks.model_checkpoint.every_n_train_steps=2"]
    stop = ["+callbacks.stop_after._target_=tests.test_train.StopAfter", "+callbacks.stop_after.steps=2"]
    train(compose_train_config(tmp_path / "stopped", overrides + stop + ["~benchmark"]))
    checkpoint = torch.load(tmp_path / "stopped" / "checkpoints" / "last.ckpt", weights_only=False)
    (state,) = [v for k, v in checkpoint["callbacks"].items() if k.startswith("RetrievalValidation")]
    base = logged_validations(tmp_path / "stopped")[0][1]
    assert state["base_score"] == base
    ckpt = tmp_path / "stopped" / "checkpoints" / "last.ckpt"
    train(compose_train_config(tmp_path / "resumed", overrides + [f"ckpt_path={ckpt}", "~benchmark"]))
    # The resumed run starts at step 2: it must not score its (trained) starting weights as the base model.
    assert all(step > 0 for step, _ in logged_validations(tmp_path / "resumed"))

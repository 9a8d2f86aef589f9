"""Reading finished runs back from their output folders: config overrides, results, failures, curves."""

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sycl.experiments.failures import FAILURE_FILE

SEED_KEYS = ("seed",)


@dataclass
class RunRecord:
    """One job's outputs.

    ``setting`` names what distinguishes the run from the others compared with it: its overrides
    that are not shared by every run, without the seed (set by ``label_settings``), so runs that
    differ only by seed share a setting. ``results`` and ``base_results`` are dataset -> metric -> value
    of the trained and of the untrained base model (``results.json``, ``results_base.json``).
    """

    path: Path
    overrides: list[str]
    results: dict[str, dict[str, float]] | None = None
    base_results: dict[str, dict[str, float]] | None = None
    failure: dict | None = None
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    setting: str = "(defaults)"

    @property
    def seed(self) -> str:
        return next((o.split("=", 1)[1] for o in self.overrides if o.split("=", 1)[0] in SEED_KEYS), "")


def label_settings(records: list[RunRecord]) -> list[str]:
    """Set each record's ``setting`` to its varying, non-seed overrides; return the overrides all share."""
    shared = set.intersection(*(set(r.overrides) for r in records)) if records else set()
    for record in records:
        varying = [o for o in record.overrides if o not in shared and o.split("=", 1)[0].lstrip("+~") not in SEED_KEYS]
        record.setting = ",".join(varying) or "(defaults)"
    return sorted(shared)


def read_runs(paths: list[str | Path]) -> tuple[list[RunRecord], list[str]]:
    """Every run under ``paths``, labelled by setting, and the overrides they all share."""
    records = [read_run(path) for path in find_run_dirs(paths)]
    return records, label_settings(records)


def find_run_dirs(paths: list[str | Path]) -> list[Path]:
    """Every job folder (one holding .hydra/config.yaml) at or below the given paths, sorted."""
    found = set()
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        found.update(config.parent.parent for config in path.glob("**/.hydra/config.yaml"))
    if not found:
        raise FileNotFoundError(f"no run folders (with .hydra/config.yaml) under {', '.join(map(str, paths))}")
    return sorted(found, key=lambda p: (len(p.parts), p.parent, int(p.name) if p.name.isdigit() else p.name))


def read_run(path: Path) -> RunRecord:
    overrides_file = path / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(overrides_file.read_text()) or [] if overrides_file.is_file() else []
    # Sweep presets are selections too; they name the sweep, not the setting of one job.
    overrides = [o for o in overrides if not o.startswith(("sweep=", "hparams_search=", "hydra/"))]
    record = RunRecord(path=path, overrides=overrides)
    if (path / "results.json").is_file():
        record.results = json.loads((path / "results.json").read_text())
    if (path / "results_base.json").is_file():
        record.base_results = json.loads((path / "results_base.json").read_text())
    if (path / FAILURE_FILE).is_file():
        record.failure = json.loads((path / FAILURE_FILE).read_text())
    record.loss_curve = read_loss_curve(path)
    return record


def read_loss_curve(path: Path) -> list[tuple[int, float]]:
    """(step, train/loss) rows from the CSV logger's metrics.csv, if the run had one."""
    files = sorted(path.glob("csv/version_*/metrics.csv"))
    if not files:
        return []
    curve = []
    with files[-1].open() as handle:
        for row in csv.DictReader(handle):
            if row.get("train/loss"):
                curve.append((int(row["step"]), float(row["train/loss"])))
    return curve

"""An online W&B Report comparing the runs of a group, when W&B is online."""

import logging
import os

log = logging.getLogger(__name__)


def wandb_is_online() -> bool:
    """Online means a key is configured and nothing forces offline mode."""
    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "disabled", "dryrun"):
        return False
    try:
        import wandb

        return bool(wandb.api.api_key)
    except Exception:  # no key file, no netrc: treated as offline
        return False


def create_wandb_report(entity: str | None, project: str, group: str, title: str) -> str | None:
    """Create a W&B Report with a runset of ``group`` and panels of the test and training metrics.

    Returns the report URL, or None (with a message) when W&B is offline or the reports API
    (``pip install wandb-workspaces``) is not installed.
    """
    if not wandb_is_online():
        print("W&B is offline (no API key or WANDB_MODE=offline): wrote the local report only.")
        return None
    try:
        import wandb_workspaces.reports.v2 as wr
    except ImportError:
        print("The W&B reports API needs `pip install wandb-workspaces`: wrote the local report only.")
        return None
    runset = wr.Runset(entity=entity, project=project, filters=f"Group = '{group}'")
    report = wr.Report(
        entity=entity,
        project=project,
        title=title,
        blocks=[
            wr.H1(text=title),
            wr.PanelGrid(
                runsets=[runset],
                panels=[
                    wr.BarPlot(title="test NDCG@10", metrics=["test/demo/NDCG@10"]),
                    wr.LinePlot(title="train/loss", x="trainer/global_step", y=["train/loss"]),
                ],
            ),
        ],
    )
    report.save()
    return report.url

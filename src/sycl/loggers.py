"""Helpers shared by every entry point that logs."""


def finish_wandb(loggers: list) -> None:
    """Close the W&B run so that each job of a multirun, and each eval, gets a run of its own."""
    if any(type(logger).__name__ == "WandbLogger" for logger in loggers):
        import wandb

        wandb.finish()

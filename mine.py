"""Mine hard negatives for a dataset's training queries: python mine.py [dataset=<folder or BEIR name>] [key=value]"""

import hydra
from omegaconf import DictConfig

import sycl.config  # noqa: F401  (registers the config resolvers)
from sycl.data.errors import DataFormatError
from sycl.entry_errors import exit_briefly_on
from sycl.mining import mine


@hydra.main(version_base="1.3", config_path="conf", config_name="mine")
def main(cfg: DictConfig) -> None:
    """A bad or missing input file, an output that exists: one line that says what to fix, no traceback."""
    summary = exit_briefly_on((DataFormatError, FileNotFoundError, FileExistsError), lambda: mine(cfg))
    print(f"Wrote {summary['negatives']} negatives for {summary['queries_written']} queries to {summary['output']}")


if __name__ == "__main__":
    main()

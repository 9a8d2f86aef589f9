"""Generate passages at relevance levels 3/2/1/0 for queries: python generate.py queries=<jsonl> output_dir=<dir>"""

import hydra
from omegaconf import DictConfig

import sycl.config  # noqa: F401  (registers the config resolvers)
from sycl.data.errors import DataFormatError
from sycl.entry_errors import exit_briefly_on
from sycl.generation import GenerationError, generate
from sycl.hub import HubFileUnavailable


@hydra.main(version_base="1.3", config_path="conf", config_name="generate")
def main(cfg: DictConfig) -> None:
    """No server, a bad queries file, an hf:// file missing offline: one line that says what to fix
    (HYDRA_FULL_ERROR=1 for the traceback)."""
    exit_briefly_on((GenerationError, DataFormatError, HubFileUnavailable), lambda: generate(cfg))


if __name__ == "__main__":
    main()

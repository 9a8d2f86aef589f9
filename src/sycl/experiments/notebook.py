"""Run the analysis notebook on a sweep and save it as HTML: the notebook's results without a Jupyter server.

    python -m sycl.experiments.notebook                       # the newest sweep under logs/train/multiruns/
    python -m sycl.experiments.notebook logs/train/multiruns/<date>_<time> --output analysis.html

The notebook (``notebooks/analysis.ipynb``) is executed top to bottom by nbclient in a fresh kernel with
``SYCL_SWEEP_DIR`` set to the sweep, then converted by nbconvert into one self-contained HTML file (tables and
plots inline), by default ``<sweep>/report/analysis.html``. A cell that fails stops the run with its error; the
HTML is written only after every cell ran, and atomically. To work in the notebook instead, open it in Jupyter
(``pip install jupyterlab && jupyter lab notebooks/analysis.ipynb``).
"""

import argparse
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from sycl.config import repo_root
from sycl.files import write_text_atomically

NOTEBOOK = Path(repo_root()) / "notebooks" / "analysis.ipynb"


def newest_sweep(root: Path) -> Path:
    """The last sweep folder under ``root`` by name (``<date>_<time>``): the one the notebook itself defaults to."""
    sweeps = sorted(path for path in root.glob("*") if path.is_dir()) if root.is_dir() else []
    if not sweeps:
        raise FileNotFoundError(f"no sweep under {root}: run `python train.py -m sweep=<preset>` or name a folder")
    return sweeps[-1]


def render(sweep_dir: Path, output: Path, notebook: Path = NOTEBOOK, timeout_s: int = 600) -> Path:
    """Execute ``notebook`` on ``sweep_dir`` and write it, outputs included, as HTML to ``output``.

    Raises nbclient's ``CellExecutionError`` (naming the cell and its error) if a cell fails; nothing is then
    written.
    """
    executed = nbformat.read(notebook, as_version=4)
    previous = os.environ.get("SYCL_SWEEP_DIR")
    os.environ["SYCL_SWEEP_DIR"] = str(sweep_dir)  # the kernel inherits this process's environment
    try:
        client = NotebookClient(
            executed, timeout=timeout_s, kernel_name="python3", resources={"metadata": {"path": str(notebook.parent)}}
        )
        client.execute()
    finally:
        if previous is None:
            os.environ.pop("SYCL_SWEEP_DIR", None)
        else:
            os.environ["SYCL_SWEEP_DIR"] = previous
    html, _ = HTMLExporter().from_notebook_node(executed)
    write_text_atomically(output, html)
    return output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", nargs="?", type=Path, help="a multirun folder (default: the newest sweep)")
    parser.add_argument("--output", type=Path, help="the HTML file (default: <sweep>/report/analysis.html)")
    args = parser.parse_args(argv)
    sweep = args.sweep or newest_sweep(Path(repo_root()) / "logs" / "train" / "multiruns")
    if not sweep.is_dir():
        sys.exit(f"no sweep folder {sweep}")
    output = render(sweep, args.output or sweep / "report" / "analysis.html")
    print(f"analysis of {sweep}: {output}")


if __name__ == "__main__":
    main()

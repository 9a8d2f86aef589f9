"""Compare runs: python report.py <multirun dir or run dirs ...> [--output DIR] [--wandb-report]"""

import argparse
from pathlib import Path

from sycl.experiments.report import write_report
from sycl.experiments.runs import read_runs
from sycl.experiments.wandb_report import create_wandb_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("paths", nargs="+", help="a multirun folder, or run folders")
    parser.add_argument("--output", help="where to write report.md/.html and plots (default: <first path>/report)")
    parser.add_argument("--title", default="SyCL run comparison")
    parser.add_argument("--wandb-report", action="store_true", help="also create an online W&B Report of the group")
    parser.add_argument("--wandb-project", default="sycl")
    parser.add_argument("--wandb-entity", default=None)
    parser.add_argument("--wandb-group", default=None, help="default: the name of the first path")
    args = parser.parse_args()

    records, shared = read_runs(args.paths)
    output = Path(args.output) if args.output else Path(args.paths[0]) / "report"
    markdown = write_report(records, output, args.title, shared)
    print(markdown.read_text())
    print(f"Report: {markdown} and {output / 'report.html'}")
    if args.wandb_report:
        group = args.wandb_group or Path(args.paths[0]).name.split("_", 2)[-1]
        url = create_wandb_report(args.wandb_entity, args.wandb_project, group, args.title)
        if url:
            print(f"W&B report: {url}")


if __name__ == "__main__":
    main()

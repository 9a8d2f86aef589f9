"""Compare runs: python report.py <multirun or run dirs ...> [--output DIR] [--reference SETTING] [--wandb-report]"""

import argparse
from pathlib import Path

from sycl.experiments.against_reference import choose_reference
from sycl.experiments.report import write_report
from sycl.experiments.runs import read_runs
from sycl.experiments.wandb_report import create_wandb_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("paths", nargs="+", help="a multirun folder, or run folders")
    parser.add_argument("--output", help="where to write report.md/.html and plots (default: <first path>/report)")
    parser.add_argument("--title", default="SyCL run comparison")
    parser.add_argument(
        "--reference",
        help="the setting every other one is tested against, over queries, as the report's tables name it (e.g. "
        "'loss=infonce'); default: '(defaults)' if a run has no varying override, else 'loss=infonce' if it is a "
        "setting, else the first job's setting",
    )
    parser.add_argument("--wandb-report", action="store_true", help="also create an online W&B Report of the group")
    parser.add_argument("--wandb-project", default="sycl")
    parser.add_argument("--wandb-entity", default=None)
    parser.add_argument("--wandb-group", default=None, help="default: the name of the first path")
    args = parser.parse_args()

    records, shared = read_runs(args.paths)
    try:
        reference = choose_reference(list(dict.fromkeys(r.setting for r in records)), args.reference)
    except ValueError as error:
        parser.error(str(error))
    output = Path(args.output) if args.output else Path(args.paths[0]) / "report"
    markdown = write_report(records, output, args.title, shared, reference)
    print(markdown.read_text())
    print(f"Report: {markdown} and {output / 'report.html'}")
    if args.wandb_report:
        group = args.wandb_group or Path(args.paths[0]).name.split("_", 2)[-1]
        url = create_wandb_report(args.wandb_entity, args.wandb_project, group, args.title)
        if url:
            print(f"W&B report: {url}")


if __name__ == "__main__":
    main()

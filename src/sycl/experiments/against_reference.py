"""Each setting of a multirun against one reference setting: paired tests over queries, from the jobs' run files.

A mean over seeds that is 0.01 above another setting's, on 51 queries, is no gain until a paired test says so.
Per dataset, a query's value is its metric averaged over the setting's seeds, as in ``against_base``, and it is
tested against the reference setting's value on the same query (``sycl.evaluation.significance.paired_test``).
"""

import statistics
from dataclasses import dataclass

from sycl.evaluation.significance import PairedTest, paired_test
from sycl.experiments.against_base import PerQueryValues
from sycl.experiments.per_query import mean_over_seeds

DEFAULT_REFERENCES = ("(defaults)", "loss=infonce")
"""Tried in order when no reference is named: the run without varying overrides (what the config trains when
nothing is changed), else the InfoNCE baseline that the paper's settings are compared with."""


@dataclass(frozen=True)
class ReferenceTest:
    """One setting on one dataset against the reference setting.

    ``reference`` and ``value`` are the means over the ``test.n`` queries of the values tested (each side
    averaged over its seeds: ``reference_seeds`` and ``seeds`` jobs), so ``value - reference`` is
    ``test.mean_difference`` up to rounding.
    """

    setting: str
    dataset: str
    seeds: int
    reference_seeds: int
    reference: float
    value: float
    test: PairedTest


def choose_reference(settings: list[str], requested: str | None = None) -> str:
    """The setting the others are tested against: ``requested``, else the first of ``DEFAULT_REFERENCES``
    among ``settings``, else the first setting (the first job's).

    Raises ValueError listing the settings when ``requested`` is not one of them.
    """
    if requested is not None:
        if requested not in settings:
            raise ValueError(f"--reference {requested!r} is not a setting of these runs; they are: {settings}")
        return requested
    return next((name for name in DEFAULT_REFERENCES if name in settings), settings[0] if settings else "")


def settings_against_reference(values: PerQueryValues, reference: str) -> tuple[list[ReferenceTest], list[str]]:
    """Per dataset, the paired test of every other setting against ``reference``, on the trained models' runs.

    ``values`` is ``against_base.per_query_values``. Returns the tests, and notes naming the datasets the
    reference has no runs on and the pairs that cannot be tested (runs over different queries).
    """
    tests, notes = [], []
    datasets = list(dict.fromkeys(dataset for _, dataset in values))
    for dataset in datasets:
        others = [setting for setting, on in values if on == dataset and setting != reference]
        if not others:
            continue
        if (reference, dataset) not in values:
            notes.append(f"{dataset}: the reference {reference} has no run files there; no test between settings")
            continue
        reference_runs = values[reference, dataset]["results"]
        for setting in others:
            runs = values[setting, dataset]["results"]
            try:
                reference_values, setting_values = mean_over_seeds(reference_runs), mean_over_seeds(runs)
                test = paired_test(reference_values, setting_values)
            except ValueError as error:
                notes.append(f"{setting} against {reference} on {dataset}: no test: {error}")
                continue
            means = statistics.fmean(reference_values.values()), statistics.fmean(setting_values.values())
            tests.append(ReferenceTest(setting, dataset, len(runs), len(reference_runs), *means, test))
    return tests, notes

"""Paired significance tests over queries: is system b's per-query metric different from system a's beyond chance?

Both tests look at the per-query differences d_q = b_q - a_q of one dataset's queries:

- Student's paired t-test (Student, "The probable error of a mean", Biometrika 6(1), 1908): with mean m and
  standard deviation s (n - 1 in the denominator) of the n differences, t = m / (s / sqrt(n)) on n - 1
  degrees of freedom; the two-sided p-value is 2 P(T > |t|), and the confidence interval of the mean
  difference is m +- t_{(1 + confidence) / 2, n - 1} s / sqrt(n).
- The paired randomization (sign-flip) test, which Smucker, Allan & Carterette recommend for IR ("A
  comparison of statistical significance tests for information retrieval evaluation", CIKM 2007): if the
  two systems are interchangeable, each query's difference is as likely to have either sign, so the
  p-value is the share of the 2^n sign assignments whose |sum| reaches the observed |sum|. It is counted
  exactly when there are at most ``flips`` assignments of the nonzero differences (``sign_flip_p_value``),
  and otherwise estimated from ``flips`` random assignments as (1 + reaching) / (1 + flips), which counts
  the observed one and is never 0 (Phipson & Smyth, "Permutation p-values should never be zero", Stat.
  Appl. Genet. Mol. Biol. 9(1), 2010).

Queries are the units: the tests say how sure one can be that b beats a on more queries *like these*, not
on other collections.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

RANDOMIZATION_FLIPS = 10_000
RANDOMIZATION_SEED = 0
# Random sign assignments drawn per matrix product: bounds memory at CHUNK x n floats for any number of queries.
CHUNK = 1_000
# A sign assignment's |sum| counts as reaching the observed one within this share of sum |d|: the same terms
# summed with other signs round differently (errors ~ n * 1e-16 of sum |d|). It can only make p larger.
TIE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class PairedTest:
    """A paired comparison of b against a over ``n`` queries; every field is a finite float (or int).

    ``mean_difference`` is the mean of b - a; ``ci_low``/``ci_high`` its ``confidence`` interval (Student
    t); ``p_t`` the two-sided paired t-test p-value; ``p_randomization`` the two-sided sign-flip test's.
    """

    n: int
    mean_difference: float
    ci_low: float
    ci_high: float
    p_t: float
    p_randomization: float
    confidence: float = 0.95


def paired_test(
    a: dict[str, float],
    b: dict[str, float],
    confidence: float = 0.95,
    flips: int = RANDOMIZATION_FLIPS,
    seed: int = RANDOMIZATION_SEED,
) -> PairedTest:
    """Test b against a on the queries they share: {query id: value}, e.g. the per-query nDCG@10 of a base
    and a trained model on one dataset (``sycl.evaluation.metrics.per_query_metric``).

    If every difference is the same value d (zero variance), the interval is (d, d) and ``p_t`` is 1.0
    for d == 0 and 0.0 otherwise, where the t statistic would be 0/0 or d/0.
    Raises ValueError, with the counts, when a and b do not hold the same queries or hold fewer than 2.
    """
    queries = matched_queries(a, b)
    differences = np.array([b[q] - a[q] for q in queries], dtype=np.float64)
    n = len(differences)
    mean = math.fsum(differences) / n
    if np.all(differences == differences[0]):
        ci_low = ci_high = mean
        p_t = 1.0 if mean == 0 else 0.0
    else:
        standard_error = float(np.std(differences, ddof=1)) / math.sqrt(n)
        p_t = min(1.0, 2.0 * float(stats.t.sf(abs(mean / standard_error), n - 1)))
        half_width = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * standard_error
        ci_low, ci_high = mean - half_width, mean + half_width
    return PairedTest(n, mean, ci_low, ci_high, p_t, sign_flip_p_value(differences, flips, seed), confidence)


def matched_queries(a: dict[str, float], b: dict[str, float]) -> list[str]:
    """The query ids of a and b, sorted; raises ValueError naming the counts unless they are the same >= 2.

    Sorted so that the random sign assignments fall on the same queries whatever order the dicts came in.
    """
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        examples = ", ".join(repr(q) for q in (only_a[:1] + only_b[:1]))
        raise ValueError(
            f"a paired test needs the same queries on both sides: a has {len(a)}, b has {len(b)}, "
            f"{len(only_a)} only in a and {len(only_b)} only in b (e.g. {examples}); score both systems on the "
            "same run queries and qrels"
        )
    if len(a) < 2:
        raise ValueError(f"a paired test needs at least 2 queries, got {len(a)}")
    return sorted(a)


def sign_flip_p_value(
    differences: np.ndarray, flips: int = RANDOMIZATION_FLIPS, seed: int = RANDOMIZATION_SEED
) -> float:
    """Two-sided p-value of the paired randomization test on ``differences`` ([n] floats, b - a per query).

    A zero difference (a query both rank alike, common for nDCG@10) is the same with either sign, so only
    the m nonzero ones are flipped: exactly over all 2^m assignments when 2^m <= ``flips``, which gives the
    share over all 2^n; else (1 + reaching) / (1 + flips) over ``flips`` assignments drawn with ``seed`` (see
    the module docstring). All differences 0 give 1.0.
    """
    differences = differences[differences != 0]
    m = len(differences)
    observed = abs(math.fsum(differences))
    threshold = observed - TIE_TOLERANCE * float(np.abs(differences).sum())
    if m < 63 and 2**m <= flips:
        # Row i flips the differences whose bit is set in i: every assignment once, row 0 the observed one.
        signs = 1.0 - 2.0 * ((np.arange(2**m)[:, None] >> np.arange(m)) & 1)
        return float(np.count_nonzero(np.abs(signs @ differences) >= threshold)) / 2**m
    rng = np.random.default_rng(seed)
    reaching = 0
    for start in range(0, flips, CHUNK):
        signs = 1.0 - 2.0 * rng.integers(0, 2, size=(min(CHUNK, flips - start), m))
        reaching += int(np.count_nonzero(np.abs(signs @ differences) >= threshold))
    return (1 + reaching) / (1 + flips)

"""The statistics of SPEC §5: Table 1 (HPD vs not) and overall survival.

Pure functions: they take data (pandas DataFrames, sequences) and return data.
Nothing here reads or writes files or the warehouse.

- `freeman_halton_p`: the exact Fisher / Freeman-Halton test for an r x c table,
  by enumerating the tables with the observed margins.
- `numeric_test` and `categorical_test`: the test choice of SPEC §5.
- `table1`: the paper's Table 1 among the given subjects, HPD vs not.
- `kaplan_meier`, `median_survival`, `logrank_test`, `survival_summary`:
  overall survival by group.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

STUDENT_T = "Student's t-test"
MANN_WHITNEY = "Mann-Whitney U"
FISHER = "Fisher's exact test"
FREEMAN_HALTON = "Freeman-Halton exact test"
CHI_SQUARE = "Pearson chi-square test"
NOT_COMPUTED = "not computed"
"""The test name when no test is possible (a group without values, or a
variable that takes a single value among the subjects): the p-value is NaN."""

SHAPIRO_ALPHA = 0.05
MIN_EXPECTED = 5.0

# ---------------------------------------------------------------------------
# Exact test for r x c tables
# ---------------------------------------------------------------------------


# The work budget of the exact test in `categorical_test` (`freeman_halton_p`'s
# `max_work`): well under a second of numpy on a 2-core machine. Every table
# of the paper's size fits, and so does Mehta & Patel's 5 x 7 example (1.3
# million steps); Agresti's 4 x 4 job satisfaction table of 96 subjects (4.2
# million) does not, nor do most tables of tens of thousands of subjects with
# a rare category (several columns of thousands each make a network of
# billions of arcs).
EXACT_WORK_BUDGET = 2_000_000
# Past the budget, the same test estimated from this many random tables.
MONTE_CARLO_TABLES = 100_000
MONTE_CARLO_SEED = 20190705  # any fixed seed: the report must be reproducible
_MONTE_CARLO_BATCH = 10_000  # tables drawn at a time, to bound the memory
FREEMAN_HALTON_MONTE_CARLO = f"{FREEMAN_HALTON} (Monte Carlo, {MONTE_CARLO_TABLES} tables)"

# The exact test keeps the sorted completion probabilities of partial tables
# with at most this many distinct completions, for this many partial tables.
_DISTRIBUTION_SIZE = 2000
_DISTRIBUTION_CACHE = 4096
# Partial tables whose log-probabilities agree to this many decimals (a
# relative 1e-9, well within the test's tolerance) are merged.
_MERGE_DIGITS = 9


def _column_vectors(total: int, caps: Sequence[int]) -> np.ndarray:
    """Every vector of non-negative integers summing to `total` with v[i] <= caps[i],
    one per row of the result, in lexicographic order."""
    vectors = np.zeros((1, 0), dtype=np.int64)
    sums = np.zeros(1, dtype=np.int64)
    capacity_after = [sum(caps[i + 1 :]) for i in range(len(caps))]
    # The last entry is what the others leave: enumerating it too would build
    # (and throw away) a product of two ranges, quadratic in the margins.
    for cap, after in zip(caps[:-1], capacity_after[:-1], strict=True):
        values = np.arange(min(cap, total) + 1, dtype=np.int64)
        new_sums = (sums[:, None] + values[None, :]).ravel()
        keep = (new_sums <= total) & (new_sums + after >= total)
        vectors = np.hstack(
            [np.repeat(vectors, len(values), axis=0), np.tile(values, len(sums))[:, None]]
        )[keep]
        sums = new_sums[keep]
    last = total - sums
    keep = last <= caps[-1]
    return np.hstack([vectors[keep], last[keep, None]])


def _column_vectors_bound(total: int, caps: Sequence[int]) -> int:
    """An upper bound of the size of `_column_vectors(total, caps)` and of the
    arrays it builds on the way, without building them."""
    bound = 1
    for cap in caps[:-1]:
        bound *= min(cap, total) + 1
    return bound


@dataclass(frozen=True)
class _Steps:
    """What one column can hold given the rows left (a node of the network),
    grouped by the next node and the probability: for each group its log P,
    how many column contents it holds, and the index of its next node in
    `after` (the rows left after the column, sorted largest first)."""

    log_p: np.ndarray
    count: np.ndarray
    next_node: np.ndarray
    after: list[tuple[int, ...]]


class ExactTestTooLarge(RuntimeError):
    """The exact test would need more than its work budget (`max_work`)."""


def freeman_halton_p(
    table: Sequence[Sequence[int]], rtol: float = 1e-7, max_work: int | None = None
) -> float:
    """Two-sided p-value of the exact Fisher / Freeman-Halton test of an r x c table.

    The probability of a table given its row and column margins is the
    multivariate hypergeometric

        P = prod(R_i!) prod(C_j!) / (N! prod(n_ij!)),

    and the p-value is the sum of P over all tables with the observed margins
    whose P is no larger than the observed table's, with a relative tolerance:
    P <= P_obs * (1 + rtol) (SPEC §5). For a 2 x 2 table this is Fisher's exact
    test as `scipy.stats.fisher_exact` computes it (whose tolerance is 1e-14).

    The tables are enumerated column by column, as paths through a network
    whose nodes are the rows left over (sorted: the rows are exchangeable)
    before each column (Mehta & Patel 1983). P factorises into the
    probability of each column given the rows left, so the completions of a
    partial table sum to the product of its columns' probabilities. The most
    and the least probable completion of each node are computed once: when
    even the most probable completion is no more probable than the observed
    table, all completions count at once; when even the least probable one is
    more probable, none do; a node with few completions keeps them sorted
    with their cumulative probabilities; otherwise the next column is
    enumerated. Partial tables reaching the same node with probabilities
    equal within a relative 1e-9 are carried together.

    The work grows with the margins: a two-row table of N subjects has
    O(N) column contents per node and O(N) nodes per column, which is
    infeasible with margins in the hundreds of thousands. `max_work` caps
    it, counted as the column contents enumerated over all the nodes of the
    network (its arcs), the partial tables carried from column to column and
    the completions kept sorted. Each step checks an upper bound of what it is
    about to build before building it, so neither time nor memory go much past
    the budget: `ExactTestTooLarge` is raised instead. None: no cap.
    """
    rows = [[int(cell) for cell in row] for row in table]
    if not rows or not rows[0]:
        raise ValueError("the table is empty")
    if any(len(row) != len(rows[0]) for row in rows):
        raise ValueError("the table's rows have different lengths")
    if any(cell < 0 for row in rows for cell in row):
        raise ValueError("the table has a negative count")
    # The columns are enumerated over the shorter dimension.
    if len(rows) > len(rows[0]):
        rows = [list(column) for column in zip(*rows, strict=True)]
    row_totals = tuple(sorted((sum(row) for row in rows), reverse=True))
    column_totals = sorted((sum(column) for column in zip(*rows, strict=True)), reverse=True)
    n = sum(row_totals)
    if n == 0:
        raise ValueError("the table has no subjects")
    work = 0

    def spend(amount: int) -> None:
        nonlocal work
        work += amount
        if max_work is not None and work > max_work:
            raise ExactTestTooLarge(
                f"the exact test of this {len(rows)} x {len(rows[0])} table of {n} subjects "
                f"needs more than {max_work} steps"
            )

    # The first column's contents, before the table of log-factorials (O(N)).
    spend(_column_vectors_bound(column_totals[0], [min(r, column_totals[0]) for r in row_totals]))
    log_factorial = np.array([math.lgamma(i + 1) for i in range(n + 1)])
    scale = 10**_MERGE_DIGITS

    log_obs = float(
        log_factorial[list(row_totals)].sum()
        + log_factorial[column_totals].sum()
        - log_factorial[n]
        - sum(log_factorial[row].sum() for row in rows)
    )
    threshold = log_obs + math.log1p(rtol)
    last = len(column_totals) - 1
    # The subjects still to place from column j on.
    remaining = [sum(column_totals[j:]) for j in range(len(column_totals))]

    @cache
    def steps(j: int, left: tuple[int, ...]) -> _Steps:
        c = column_totals[j]
        total = remaining[j]
        rows_left = np.array(left, dtype=np.int64)
        caps = [min(r, c) for r in left]
        if j > 0:  # the root's were counted up front
            spend(_column_vectors_bound(c, caps))
        vectors = _column_vectors(c, caps)
        # Multivariate hypergeometric: prod C(left_i, v_i) / C(total, c).
        log_p = (
            log_factorial[rows_left].sum()
            - log_factorial[vectors].sum(axis=1)
            - log_factorial[rows_left - vectors].sum(axis=1)
            - (log_factorial[total] - log_factorial[c] - log_factorial[total - c])
        )
        after_rows = -np.sort(vectors - rows_left, axis=1)  # sorted, largest first
        unique_after, next_node = np.unique(after_rows, axis=0, return_inverse=True)
        next_node = next_node.ravel()
        keys = np.stack([next_node, np.round(log_p * scale).astype(np.int64)], axis=1)
        _, first, count = np.unique(keys, axis=0, return_index=True, return_counts=True)
        return _Steps(
            log_p=log_p[first],
            count=count,
            next_node=next_node[first],
            after=[tuple(row) for row in unique_after.tolist()],
        )

    @cache
    def bounds(j: int, left: tuple[int, ...]) -> tuple[float, float]:
        """The least and the most log P of a completion from column j on."""
        if j == last:
            return 0.0, 0.0  # the last column is what the rows leave: P = 1
        step = steps(j, left)
        after_bounds = np.array([bounds(j + 1, after) for after in step.after])
        low = step.log_p + after_bounds[step.next_node, 0]
        high = step.log_p + after_bounds[step.next_node, 1]
        return float(low.min()), float(high.max())

    @cache
    def size(j: int, left: tuple[int, ...]) -> int:
        """How many distinct completion probabilities `distribution` holds."""
        if j == last:
            return 1
        step = steps(j, left)
        sizes = np.array([size(j + 1, after) for after in step.after])
        return int(sizes[step.next_node].sum())

    @lru_cache(maxsize=_DISTRIBUTION_CACHE)
    def distribution(j: int, left: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """The completions' log P from column j on, sorted, and their P."""
        if j == last:
            return np.zeros(1), np.ones(1)
        step = steps(j, left)
        after_distributions = [distribution(j + 1, after) for after in step.after]
        logs = []
        probabilities = []
        for log_p, count, node in zip(step.log_p, step.count, step.next_node, strict=True):
            after_logs, after_p = after_distributions[node]
            logs.append(log_p + after_logs)
            probabilities.append(count * math.exp(log_p) * after_p)
        all_logs = np.concatenate(logs)
        spend(len(all_logs))
        order = np.argsort(all_logs, kind="stable")
        return all_logs[order], np.concatenate(probabilities)[order]

    @lru_cache(maxsize=_DISTRIBUTION_CACHE)
    def cumulative(j: int, left: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        logs, probabilities = distribution(j, left)
        return logs, np.cumsum(probabilities)

    # Column by column, the partial tables reaching each node, as arrays of
    # their log P and their P (summed over the tables merged).
    p_value = 0.0
    stage: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {
        row_totals: (np.zeros(1), np.ones(1))
    }
    for j in range(len(column_totals)):
        nodes: dict[tuple[int, ...], int] = {}
        next_ids, next_logs, next_masses = [], [], []
        for left, (log_past, mass) in stage.items():
            low, high = bounds(j, left)
            every = log_past + high <= threshold  # every completion counts
            some = ~every & (log_past + low <= threshold)  # some do
            p_value += float(mass[every].sum())
            if not some.any():
                continue
            log_past, mass = log_past[some], mass[some]
            if size(j, left) <= _DISTRIBUTION_SIZE:
                # Few completions: their sorted probabilities say at once how
                # much of them is no more probable than the observed table.
                logs, cumulated = cumulative(j, left)
                counted = np.searchsorted(logs, threshold - log_past, side="right")
                reached = counted > 0
                p_value += float((mass[reached] * cumulated[counted[reached] - 1]).sum())
                continue
            # Not reached at the last column, where low == high.
            step = steps(j, left)
            spend(len(log_past) * len(step.log_p))
            ids = np.array([nodes.setdefault(after, len(nodes)) for after in step.after])
            next_ids.append(np.tile(ids[step.next_node], len(log_past)))
            next_logs.append((log_past[:, None] + step.log_p[None, :]).ravel())
            next_masses.append((mass[:, None] * (step.count * np.exp(step.log_p))[None, :]).ravel())
        if not nodes:
            break
        ids = np.concatenate(next_ids)
        logs = np.concatenate(next_logs)
        masses = np.concatenate(next_masses)
        keys = np.stack([ids, np.round(logs * scale).astype(np.int64)], axis=1)
        unique_keys, first, inverse = np.unique(
            keys, axis=0, return_index=True, return_inverse=True
        )
        merged_mass = np.bincount(inverse.ravel(), weights=masses, minlength=len(unique_keys))
        merged_logs = logs[first]
        boundaries = np.flatnonzero(np.diff(unique_keys[:, 0])) + 1
        names = list(nodes)  # by id
        stage = {}
        for part_logs, part_mass, part_ids in zip(
            np.split(merged_logs, boundaries),
            np.split(merged_mass, boundaries),
            np.split(unique_keys[:, 0], boundaries),
            strict=True,
        ):
            stage[names[int(part_ids[0])]] = (part_logs, part_mass)
    return min(1.0, p_value)


def freeman_halton_monte_carlo_p(
    table: Sequence[Sequence[int]],
    n_resamples: int = MONTE_CARLO_TABLES,
    seed: int = MONTE_CARLO_SEED,
    rtol: float = 1e-7,
) -> float:
    """A Monte Carlo estimate of `freeman_halton_p`, for tables too large to enumerate.

    `n_resamples` tables are drawn at random with the observed margins
    (`scipy.stats.random_table`, Patefield's algorithm, whose cost does not
    grow with the counts) from a generator seeded with `seed`, so the
    estimate is reproducible. The p-value counts the tables no more probable
    than the observed one, with the exact test's tolerance, and the observed
    table itself: (1 + k) / (1 + n_resamples), as `scipy.stats.monte_carlo_test`
    and R's `fisher.test(simulate.p.value = TRUE)` estimate it. Its standard
    error is sqrt(p (1 - p) / n_resamples), below 0.0016 for 100,000 tables.

    `scipy.stats.fisher_exact(table, method=MonteCarloMethod(...))` estimates
    the same test, but it tells a batch of drawn tables from a single table by
    comparing their size with the number of subjects, which fails once the
    subjects outnumber the cells drawn; the draws are made here directly.
    """
    counts = np.asarray(table, dtype=np.int64)
    if counts.ndim != 2 or counts.size == 0:
        raise ValueError("the table is empty")
    if np.any(counts < 0):
        raise ValueError("the table has a negative count")
    if counts.sum() == 0:
        raise ValueError("the table has no subjects")
    row_totals = counts.sum(axis=1)
    column_totals = counts.sum(axis=0)
    if min(counts.shape) == 1:
        return 1.0  # a single table has these margins
    constant = float(
        special.gammaln(row_totals + 1).sum()
        + special.gammaln(column_totals + 1).sum()
        - special.gammaln(counts.sum() + 1)
    )

    def log_p(tables: np.ndarray) -> np.ndarray:
        cells = tables.reshape(*tables.shape[:-2], -1)
        return constant - special.gammaln(cells + 1).sum(axis=-1)

    threshold = float(log_p(counts)) + math.log1p(rtol)
    generator = stats.random_table(row_totals, column_totals, seed=np.random.default_rng(seed))
    as_extreme = 0
    for start in range(0, n_resamples, _MONTE_CARLO_BATCH):
        size = min(_MONTE_CARLO_BATCH, n_resamples - start)
        drawn = generator.rvs(size=size, method="patefield")
        as_extreme += int(np.count_nonzero(log_p(drawn) <= threshold))
    return (1 + as_extreme) / (1 + n_resamples)


# ---------------------------------------------------------------------------
# Two-group tests
# ---------------------------------------------------------------------------


def _series(values: Iterable[Any]) -> pd.Series:
    """`values` as a Series with a fresh index. A Series or an array is taken
    as it is: going through a list of Python objects costs seconds for a
    million values."""
    if isinstance(values, pd.Series):
        return values.reset_index(drop=True)
    if isinstance(values, np.ndarray | pd.Index | pd.api.extensions.ExtensionArray):
        return pd.Series(values)
    return pd.Series(list(values), dtype="object")


def _numbers(values: Iterable[Any]) -> np.ndarray:
    """`values` as floats; NaN for a missing value or one that is not a number."""
    numbers = pd.to_numeric(_series(values), errors="coerce")
    return numbers.to_numpy(dtype=float, na_value=np.nan)


def _finite(values: Iterable[Any]) -> np.ndarray:
    array = _numbers(values)
    return array[np.isfinite(array)]


# scipy's Shapiro-Wilk warns, for every group of more than 5000 values, that
# its p-value "may not be accurate"; see `_passes_shapiro`.
_SHAPIRO_LARGE_N = r".*For N > 5000, computed p-value may not be accurate"


def _passes_shapiro(values: np.ndarray) -> bool:
    """Whether a group passes Shapiro-Wilk at `SHAPIRO_ALPHA`.

    Past 5000 values scipy's p-value is an extrapolation of Royston's
    approximation, and scipy says so with a warning on every call. The test
    is kept as SPEC §5 asks and the warning silenced: with thousands of
    values Shapiro-Wilk detects the smallest departure from normality, so a
    real-world group fails it and gets Mann-Whitney U; and at such sizes the
    t-test no longer needs normal data (central limit theorem), so an
    approximate Shapiro-Wilk p-value changes little.
    """
    if len(values) < 3 or np.ptp(values) == 0:
        return False  # too small to test, or constant: not shown to be normal
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_SHAPIRO_LARGE_N, category=UserWarning)
        p_value = stats.shapiro(values).pvalue
    return bool(p_value >= SHAPIRO_ALPHA)


def numeric_test(x: Iterable[Any], y: Iterable[Any]) -> tuple[float, str]:
    """Compare a number between two groups (SPEC §5): (two-sided p, test name).

    Student's t-test (equal variances) when both groups pass Shapiro-Wilk at
    0.05, else Mann-Whitney U with the normal approximation, the tie
    correction and no continuity correction, as SPSS reports it. A group of
    fewer than 3 values, or of a single repeated value, cannot pass
    Shapiro-Wilk and goes to Mann-Whitney; a group of more than 5000 values
    is tested without scipy's warning that its p-value is approximate (see
    `_passes_shapiro`). Missing values (None, NaN) are left out. Without a
    value in one of the groups, or when every value is the same, there is
    nothing to test: (NaN, "not computed").
    """
    a = _finite(x)
    b = _finite(y)
    if len(a) == 0 or len(b) == 0 or np.ptp(np.concatenate([a, b])) == 0:
        return math.nan, NOT_COMPUTED
    if _passes_shapiro(a) and _passes_shapiro(b):
        return float(stats.ttest_ind(a, b, equal_var=True).pvalue), STUDENT_T
    result = stats.mannwhitneyu(
        a, b, alternative="two-sided", use_continuity=False, method="asymptotic"
    )
    return float(result.pvalue), MANN_WHITNEY


def categorical_test(table: Sequence[Sequence[int]] | np.ndarray) -> tuple[float, str]:
    """Test a contingency table (SPEC §5): (two-sided p, test name).

    All-zero rows and columns are dropped first. Then Fisher's exact test
    (2 x 2) or the Freeman-Halton exact test (r x c), both by `freeman_halton_p`,
    when any expected count is below 5, else Pearson's χ² without continuity
    correction. A table left with a single row or column (a variable with one
    value among the subjects) is not tested: (NaN, "not computed").

    The exact enumeration is given `EXACT_WORK_BUDGET` steps. An r x c table
    that needs more (a rare category among hundreds of thousands of subjects)
    gets the Monte Carlo estimate of the same test instead
    (`freeman_halton_monte_carlo_p`, `MONTE_CARLO_TABLES` tables, a fixed
    seed), named as such: `FREEMAN_HALTON_MONTE_CARLO`. A 2 x 2 table is
    always exact: past the budget, by `scipy.stats.fisher_exact`, whose
    2 x 2 test sums the hypergeometric tails without enumerating.
    """
    array = np.asarray(table, dtype=float)
    if array.ndim != 2:
        raise ValueError("a contingency table has two dimensions")
    if np.any(array < 0) or np.any(array != np.round(array)):
        raise ValueError("a contingency table holds non-negative whole counts")
    array = array[array.sum(axis=1) > 0][:, array.sum(axis=0) > 0]
    if array.shape[0] < 2 or array.shape[1] < 2:
        return math.nan, NOT_COMPUTED
    counts = array.astype(int)
    expected = stats.contingency.expected_freq(counts)
    if np.any(expected < MIN_EXPECTED):
        two_by_two = counts.shape == (2, 2)
        name = FISHER if two_by_two else FREEMAN_HALTON
        try:
            return freeman_halton_p(counts.tolist(), max_work=EXACT_WORK_BUDGET), name
        except ExactTestTooLarge:
            if two_by_two:
                return float(stats.fisher_exact(counts).pvalue), FISHER
            return freeman_halton_monte_carlo_p(counts), FREEMAN_HALTON_MONTE_CARLO
    chi2 = stats.chi2_contingency(counts, correction=False)
    return float(chi2.pvalue), CHI_SQUARE


# ---------------------------------------------------------------------------
# Table 1
# ---------------------------------------------------------------------------

TABLE1_COLUMNS = [
    "variable",
    "variable_order",
    "category",
    "category_order",
    "all_n",
    "all_percent",
    "no_hpd_n",
    "no_hpd_percent",
    "hpd_n",
    "hpd_percent",
    "all_summary",
    "no_hpd_summary",
    "hpd_summary",
    "p_value",
    "test",
]

# The paper's order of the categories; values not listed follow, by descending
# frequency then by name.
SEX_LABELS = {"M": "Male", "F": "Female"}
REGIMEN_ORDER = ["PD-1", "PD-L1", "PD-L1 + CTLA-4"]
MMR_ORDER = ["pMMR", "dMMR"]
PDL1_LABELS = {True: "Positive", False: "Negative"}
EN_DASH = "\u2013"  # the range's dash, as the paper prints "54 (22\u201377)"
METSITES_THRESHOLD = 2
METSITES_LABELS = {True: f"≤{METSITES_THRESHOLD}", False: f">{METSITES_THRESHOLD}"}
# Location and histology are in the paper by descending frequency; ties as
# the paper lists them.
LOCATION_TIES = ["STOMACH", "ESOPHAGUS", "COLORECTAL", "LIVER", "PANCREAS", "AMPULLA"]
HISTOLOGY_TIES = [
    "ADENOCARCINOMA",
    "SQUAMOUS CELL CARCINOMA",
    "NEUROENDOCRINE CARCINOMA",
    "HEPATOCELLULAR CARCINOMA",
]


@dataclass(frozen=True)
class _Categories:
    """A category per subject, as its index in `categories` (-1: missing)."""

    codes: np.ndarray
    categories: list[Hashable]


@dataclass(frozen=True)
class _Categorical:
    """A categorical Table 1 variable: a category per subject (None: missing).

    `order` sorts the categories given their frequencies among the subjects
    with a value (a Series indexed by category)."""

    name: str
    categorize: Callable[[pd.DataFrame], _Categories]
    order: Callable[[pd.Series], list[Hashable]]
    label: Callable[[Hashable], str]
    numeric_test_column: str | None = None  # tested as this number instead


@dataclass(frozen=True)
class _Numeric:
    name: str
    column: str


def _fixed_order(first: Sequence[Hashable]) -> Callable[[pd.Series], list[Hashable]]:
    def order(frequencies: pd.Series) -> list[Hashable]:
        known = [value for value in first if value in frequencies.index]
        others = frequencies[~frequencies.index.isin(list(first))]
        rest = sorted(others.index, key=lambda value: (-others[value], str(value)))
        return [*known, *rest]

    return order


def _by_frequency(ties: Sequence[Hashable]) -> Callable[[pd.Series], list[Hashable]]:
    rank = {value: i for i, value in enumerate(ties)}

    def order(frequencies: pd.Series) -> list[Hashable]:
        return sorted(
            frequencies.index,
            key=lambda value: (-frequencies[value], rank.get(value, len(rank)), str(value)),
        )

    return order


def _format_number(value: float) -> str:
    """54 for a whole number, else one decimal (54.5)."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.1f}"


def _by_value(values: pd.Series, function: Callable[[Any], Hashable | None]) -> _Categories:
    """The categories `function` gives the values (None: missing), computed once
    per distinct value, on plain Python values: a handful of categories among
    up to a million subjects, counted as integer codes rather than objects."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    categories: list[Hashable] = []
    position: dict[Hashable, int] = {}
    recode = np.full(len(uniques) + 1, -1, dtype=np.int64)  # the last: for missing values
    for index, value in enumerate(pd.Index(uniques).tolist()):
        category = function(value)
        if category is None:
            continue
        if category not in position:
            position[category] = len(categories)
            categories.append(category)
        recode[index] = position[category]
    return _Categories(recode[codes], categories)


def _text(column: str) -> Callable[[pd.DataFrame], _Categories]:
    def categorize(subjects: pd.DataFrame) -> _Categories:
        return _by_value(subjects[column], lambda v: str(v).strip() or None)

    return categorize


def _ecog(subjects: pd.DataFrame) -> _Categories:
    numbers = pd.to_numeric(subjects["ecog_baseline"], errors="coerce").astype(float)
    return _by_value(numbers, _format_number)


def _numeric_category(
    column: str, classify: Callable[[float], Hashable]
) -> Callable[[pd.DataFrame], _Categories]:
    def categorize(subjects: pd.DataFrame) -> _Categories:
        numbers = pd.to_numeric(subjects[column], errors="coerce").astype(float)
        return _by_value(numbers, classify)

    return categorize


TABLE1_VARIABLES: list[_Categorical | _Numeric] = [
    _Categorical(
        "Gender",
        _text("sex"),
        _fixed_order(list(SEX_LABELS)),
        lambda v: SEX_LABELS.get(str(v), str(v)),
    ),
    _Numeric("Age", "age"),
    _Categorical("ECOG", _ecog, lambda frequencies: sorted(frequencies.index, key=float), str),
    _Categorical("Location", _text("primsite"), _by_frequency(LOCATION_TIES), str),
    _Categorical("Histology", _text("histol"), _by_frequency(HISTOLOGY_TIES), str),
    _Categorical(
        "Metastatic sites",
        _numeric_category("metsites", lambda v: v <= METSITES_THRESHOLD),
        _fixed_order([True, False]),
        lambda v: METSITES_LABELS[bool(v)],
        numeric_test_column="metsites",
    ),
    _Categorical("Type of immunotherapy", _text("regimen"), _fixed_order(REGIMEN_ORDER), str),
    _Categorical("MMR", _text("mmr"), _fixed_order(MMR_ORDER), str),
    _Categorical(
        "PD-L1",
        _numeric_category("pdl1cps", lambda v: v >= 1),
        _fixed_order([True, False]),
        lambda v: PDL1_LABELS[bool(v)],
    ),
]


def _percent_text(count: int, total: int) -> str:
    """The display text of a count, with its percent among the subjects with a
    value rounded half up to a whole number: 17 of 25 is "17 (68%)"."""
    if total == 0:
        return str(count)
    rounded = (200 * count + total) // (2 * total)
    return f"{count} ({rounded}%)"


def _percent(count: int, total: int) -> float | None:
    return 100.0 * count / total if total else None


def _median_range_text(values: np.ndarray) -> str | None:
    if len(values) == 0:
        return None
    median = _format_number(float(np.median(values)))
    low, high = _format_number(values.min()), _format_number(values.max())
    return f"{median} ({low}{EN_DASH}{high})"


def _group_flags(subjects: pd.DataFrame, group: str) -> pd.Series:
    flags = subjects[group]
    if flags.isna().any():
        raise ValueError(f"the group column {group!r} has missing values")
    values = set(flags.drop_duplicates().astype(object))  # distinct first: a million rows
    if not values <= {True, False}:  # 1 and 0 compare equal to True and False
        raise ValueError(f"the group column {group!r} is not boolean: {sorted(map(str, values))}")
    return flags.astype(bool)


def table1(subjects: pd.DataFrame, group: str = "hpd") -> pd.DataFrame:
    """The paper's Table 1 (SPEC §5) among `subjects`, by the boolean `group`.

    `subjects` holds one row per subject with the columns of
    `analytics.subject_characteristics` — `sex` (M/F), `age`, `ecog_baseline`,
    `primsite`, `histol`, `metsites`, `regimen`, `mmr`, `pdl1cps` — and the
    group flag (True: HPD). Pass the evaluable subjects only; the flag must
    not be missing.

    One row per variable and category, in the paper's order: Gender (Male,
    Female), Age, ECOG, Location, Histology (both by descending frequency,
    ties as in the paper), Metastatic sites (≤2, >2), Type of immunotherapy
    (the data's regimen: PD-1, PD-L1, PD-L1 + CTLA-4), MMR (pMMR, dMMR) and
    PD-L1 (Positive: CPS ≥ 1, Negative). Categories the paper does not list
    follow its own, by descending frequency then name.

    Counts are `*_n`; `*_percent` is the unrounded percent among the subjects
    of the column with a value for the variable; `*_summary` is the display
    text, "17 (68%)" with the percent rounded half up to a whole number (a
    zero count is "0 (0%)"). A numeric variable (Age) has a single row with
    `category` null, `*_n` the subjects with a value, `*_percent` null and
    "54 (22\u201377)", the median (range), as summary.

    `p_value` and `test` are repeated on every row of a variable. Subjects
    without a value are left out of the variable's test and percentages.
    Categorical variables go to `categorical_test`; Age and Metastatic sites
    (displayed as ≤2 / >2 but tested as a number) to `numeric_test`.
    """
    flags = _group_flags(subjects, group)
    hpd_flags = flags.to_numpy()
    rows: list[dict[str, Any]] = []
    for variable_order, variable in enumerate(TABLE1_VARIABLES, start=1):
        if isinstance(variable, _Numeric):
            numbers = pd.to_numeric(subjects[variable.column], errors="coerce").astype(float)
            groups = {
                "all": numbers.to_numpy(),
                "no_hpd": numbers[~flags].to_numpy(),
                "hpd": numbers[flags].to_numpy(),
            }
            groups = {key: values[np.isfinite(values)] for key, values in groups.items()}
            p_value, test = numeric_test(groups["no_hpd"], groups["hpd"])
            row: dict[str, Any] = {
                "variable": variable.name,
                "variable_order": variable_order,
                "category": None,
                "category_order": 1,
            }
            for key, values in groups.items():
                row[f"{key}_n"] = len(values)
                row[f"{key}_percent"] = None
                row[f"{key}_summary"] = _median_range_text(values)
            row["p_value"] = None if math.isnan(p_value) else p_value
            row["test"] = test
            rows.append(row)
            continue

        coded = variable.categorize(subjects)
        has_value = coded.codes >= 0
        size = len(coded.categories)
        all_n = np.bincount(coded.codes[has_value], minlength=size)
        hpd_n = np.bincount(coded.codes[has_value & hpd_flags], minlength=size)
        index = pd.Index(coded.categories, dtype="object")
        counts = {
            "all": pd.Series(all_n, index=index),
            "no_hpd": pd.Series(all_n - hpd_n, index=index),
            "hpd": pd.Series(hpd_n, index=index),
        }
        ordered = variable.order(counts["all"])
        totals = {key: int(series.sum()) for key, series in counts.items()}
        if variable.numeric_test_column is not None:
            numbers = pd.to_numeric(subjects[variable.numeric_test_column], errors="coerce")
            p_value, test = numeric_test(numbers[~flags], numbers[flags])
        else:
            contingency = [
                [int(counts["no_hpd"].get(c, 0)), int(counts["hpd"].get(c, 0))] for c in ordered
            ]
            p_value, test = (
                categorical_test(contingency) if contingency else (math.nan, NOT_COMPUTED)
            )
        for category_order, category in enumerate(ordered, start=1):
            row = {
                "variable": variable.name,
                "variable_order": variable_order,
                "category": variable.label(category),
                "category_order": category_order,
            }
            for key, series in counts.items():
                count = int(series.get(category, 0))
                row[f"{key}_n"] = count
                row[f"{key}_percent"] = _percent(count, totals[key])
                row[f"{key}_summary"] = _percent_text(count, totals[key])
            row["p_value"] = None if math.isnan(p_value) else p_value
            row["test"] = test
            rows.append(row)

    result = pd.DataFrame(rows, columns=TABLE1_COLUMNS)
    for column in ("all_n", "no_hpd_n", "hpd_n", "variable_order", "category_order"):
        result[column] = result[column].astype("int64")
    for column in ("all_percent", "no_hpd_percent", "hpd_percent", "p_value"):
        result[column] = result[column].astype("float64")
    return result


# ---------------------------------------------------------------------------
# Survival
# ---------------------------------------------------------------------------

KM_COLUMNS = ["time", "at_risk", "events", "censored", "survival", "ci_lower", "ci_upper"]
Z_95 = float(stats.norm.ppf(0.975))


def _survival_data(time: Iterable[Any], event: Iterable[Any]) -> tuple[np.ndarray, np.ndarray]:
    t = _numbers(time)
    e_series = _series(event)
    if len(t) != len(e_series):
        raise ValueError("time and event have different lengths")
    known = np.isfinite(t) & e_series.notna().to_numpy()
    if np.any(t[known] < 0):
        raise ValueError("a survival time is negative")
    e = e_series[known].astype(bool).to_numpy()
    return t[known], e


def kaplan_meier(time: Iterable[Any], event: Iterable[Any]) -> pd.DataFrame:
    """The Kaplan-Meier estimate, one row per distinct observed time.

    `event` is True for a death, False for a censored time. Rows with a
    missing time or event (e.g. a death with an unknown date) are left out.
    `survival` is S(t) just after `time`; `ci_lower`/`ci_upper` are the 95%
    log-log (complementary log-log) confidence limits with Greenwood's
    variance: S^exp(±1.96 · se), se = sqrt(Σ d/(n(n-d))) / |log S| — 1 while
    S = 1, and NaN once S = 0 (as R's `survfit(conf.type = "log-log")`).

    Computed over the distinct times at once (the products and the sums are
    running ones, in time order), so a million subjects take a fraction of a
    second.
    """
    t, e = _survival_data(time, event)
    times, at_time = np.unique(t, return_inverse=True)
    leaving = np.bincount(at_time, minlength=len(times))
    deaths = np.bincount(at_time, weights=e, minlength=len(times)).astype(np.int64)
    at_risk = len(t) - np.concatenate([[0], np.cumsum(leaving)[:-1]]).astype(np.int64)
    died = deaths > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        survival = np.cumprod(np.where(died, 1.0 - deaths / at_risk, 1.0))
        terms = np.where(
            died,
            np.where(at_risk > deaths, deaths / (at_risk * (at_risk - deaths)), np.inf),
            0.0,
        )
        greenwood = np.cumsum(terms)
        se = np.sqrt(greenwood) / np.abs(np.log(survival))
        # log(-log S) ± z·se; S = exp(-exp(.)) is decreasing in it.
        lower = survival ** np.exp(Z_95 * se)
        upper = survival ** np.exp(-Z_95 * se)
    undefined = (survival <= 0.0) | np.isinf(greenwood)
    whole = survival >= 1.0
    lower = np.where(whole, 1.0, np.where(undefined, np.nan, lower))
    upper = np.where(whole, 1.0, np.where(undefined, np.nan, upper))
    return pd.DataFrame(
        {
            "time": times.astype(float),
            "at_risk": at_risk,
            "events": deaths,
            "censored": (leaving - deaths).astype(np.int64),
            "survival": survival,
            "ci_lower": lower,
            "ci_upper": upper,
        },
        columns=KM_COLUMNS,
    )


def _first_time_at_or_below(km: pd.DataFrame, column: str, level: float = 0.5) -> float | None:
    reached = km[km[column].notna() & (km[column] <= level)]
    return None if reached.empty else float(reached["time"].iloc[0])


def median_survival(km: pd.DataFrame) -> tuple[float | None, float | None, float | None]:
    """(median, CI lower, CI upper) of a `kaplan_meier` table; None where not reached.

    The median is the first time at which S(t) <= 0.5; its 95% confidence
    limits are the first times at which the lower and the upper confidence
    curves reach 0.5 (Brookmeyer-Crowley by inverting the pointwise CI, as
    R's `survfit` reports them, without its midpoint rule for S exactly 0.5).
    """
    return (
        _first_time_at_or_below(km, "survival"),
        _first_time_at_or_below(km, "ci_lower"),
        _first_time_at_or_below(km, "ci_upper"),
    )


def _group_codes(groups: pd.Series) -> tuple[np.ndarray, int]:
    """Each value's index among the distinct values sorted by their text."""
    codes, uniques = pd.factorize(groups)
    labels = pd.Index(uniques).tolist()
    order = sorted(range(len(labels)), key=lambda i: str(labels[i]))
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(len(labels))
    return rank[codes], len(labels)


def _time_ordered_sum(terms: np.ndarray) -> np.ndarray:
    """The sum of `terms` over their first axis, added one after the other."""
    if len(terms) == 0:
        return np.zeros(terms.shape[1:])
    return np.cumsum(terms, axis=0)[-1]


def logrank_test(time: Iterable[Any], event: Iterable[Any], group: Iterable[Any]) -> float:
    """Two-sided log-rank p-value: χ² with k-1 degrees of freedom for k groups.

    At every death time, each group's expected deaths are its share of those
    at risk; the statistic is (O-E)ᵀ V⁻¹ (O-E) over k-1 groups, with the
    hypergeometric covariance V. Rows with a missing time, event or group are
    left out. NaN with fewer than two groups or no death.

    The subjects at risk and the deaths are counted per distinct time and
    group at once (running sums in time order), not per subject.
    """
    t = _numbers(time)
    e_series = _series(event)
    g_series = _series(group)
    if not len(t) == len(e_series) == len(g_series):
        raise ValueError("time, event and group have different lengths")
    known = ~np.isnan(t) & e_series.notna().to_numpy() & g_series.notna().to_numpy()
    t = t[known]
    e = e_series[known].astype(bool).to_numpy()
    g, k = _group_codes(g_series[known])
    if k < 2:
        return math.nan
    if not np.any(e):
        return math.nan
    times, at_time = np.unique(t, return_inverse=True)
    cell = at_time * k + g
    leaving = np.bincount(cell, minlength=len(times) * k).reshape(len(times), k)
    deaths = np.bincount(cell, weights=e, minlength=len(times) * k).reshape(len(times), k)
    left_before = np.vstack([np.zeros((1, k)), np.cumsum(leaving, axis=0)[:-1]])
    at_risk = leaving.sum(axis=0)[None, :] - left_before
    death_time = deaths.sum(axis=1) > 0
    at_risk, deaths = at_risk[death_time], deaths[death_time]
    n = at_risk.sum(axis=1)
    d = deaths.sum(axis=1)
    # Running sums in time order rather than numpy's pairwise ones: the value
    # of a per-death-time loop, to the last bit.
    observed_minus_expected = _time_ordered_sum(deaths - d[:, None] * at_risk / n[:, None])
    several = n > 1
    share = at_risk[several] / n[several, None]
    factor = d[several] * (n[several] - d[several]) / (n[several] - 1)
    spread = share[:, :, None] * np.eye(k)[None, :, :] - share[:, :, None] * share[:, None, :]
    covariance = _time_ordered_sum(factor[:, None, None] * spread)
    reduced = observed_minus_expected[:-1]
    statistic = float(reduced @ np.linalg.pinv(covariance[:-1, :-1]) @ reduced)
    return float(stats.chi2.sf(statistic, k - 1))


SURVIVAL_SUMMARY_COLUMNS = [
    "hpd_group",
    "subjects",
    "events",
    "median_os_months",
    "median_ci_lower",
    "median_ci_upper",
    "logrank_p",
    "unknown_time",
]


def survival_summary(
    survival: pd.DataFrame,
    group: str = "hpd",
    time: str = "os_months",
    event: str = "event",
) -> pd.DataFrame:
    """Overall survival per group: one row per value of `group`, in sorted order.

    `survival` holds one row per subject with `os_months`, `event` (True:
    death) and the group column (as `analytics.survival` joined with the HPD
    flag). Subjects with a missing time — a death without a date — or a
    missing event are left out of the curves, the medians and the log-rank
    test; they are counted in `unknown_time`, not in `subjects` or `events`.
    Subjects with a missing group are left out altogether.

    Columns: `hpd_group` (the group's value; not `group`, a reserved word in
    SQL), `subjects` and `events` in the curve, the median OS in
    months and its 95% CI (`median_survival`; null where not reached), the
    log-rank p across all groups (the same on every row), `unknown_time`.
    """
    data = survival[survival[group].notna()]
    times = pd.to_numeric(data[time], errors="coerce")
    known = times.notna() & data[event].notna()
    p_value = logrank_test(times[known], data.loc[known, event], data.loc[known, group])
    rows = []
    for value in sorted(data[group].unique(), key=str):
        in_group = data[group] == value
        curve = known & in_group
        km = kaplan_meier(times[curve], data.loc[curve, event])
        median, lower, upper = median_survival(km)
        rows.append(
            {
                "hpd_group": value,
                "subjects": int(curve.sum()),
                "events": int(data.loc[curve, event].astype(bool).sum()),
                "median_os_months": median,
                "median_ci_lower": lower,
                "median_ci_upper": upper,
                "logrank_p": None if math.isnan(p_value) else p_value,
                "unknown_time": int((in_group & ~known).sum()),
            }
        )
    result = pd.DataFrame(rows, columns=SURVIVAL_SUMMARY_COLUMNS)
    for column in ("median_os_months", "median_ci_lower", "median_ci_upper", "logrank_p"):
        result[column] = result[column].astype("float64")
    return result

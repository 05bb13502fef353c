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
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

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


# The exact test keeps the sorted completion probabilities of partial tables
# with at most this many distinct completions, for this many partial tables.
_DISTRIBUTION_SIZE = 2000
_DISTRIBUTION_CACHE = 4096
# Partial tables whose log-probabilities agree to this many decimals (a
# relative 1e-9, well within the test's tolerance) are merged.
_MERGE_DIGITS = 9


def _column_vectors(total: int, caps: Sequence[int]) -> np.ndarray:
    """Every vector of non-negative integers summing to `total` with v[i] <= caps[i],
    one per row of the result."""
    vectors = np.zeros((1, 0), dtype=np.int64)
    sums = np.zeros(1, dtype=np.int64)
    capacity_after = [sum(caps[i + 1 :]) for i in range(len(caps))]
    for cap, after in zip(caps, capacity_after, strict=True):
        values = np.arange(min(cap, total) + 1, dtype=np.int64)
        new_sums = (sums[:, None] + values[None, :]).ravel()
        keep = (new_sums <= total) & (new_sums + after >= total)
        vectors = np.hstack(
            [np.repeat(vectors, len(values), axis=0), np.tile(values, len(sums))[:, None]]
        )[keep]
        sums = new_sums[keep]
    return vectors


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


def freeman_halton_p(table: Sequence[Sequence[int]], rtol: float = 1e-7) -> float:
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
        vectors = _column_vectors(c, [min(r, c) for r in left])
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


# ---------------------------------------------------------------------------
# Two-group tests
# ---------------------------------------------------------------------------


def _finite(values: Iterable[Any]) -> np.ndarray:
    array = pd.to_numeric(pd.Series(list(values), dtype="object"), errors="coerce").to_numpy(
        dtype=float
    )
    return array[np.isfinite(array)]


def _passes_shapiro(values: np.ndarray) -> bool:
    if len(values) < 3 or np.ptp(values) == 0:
        return False  # too small to test, or constant: not shown to be normal
    return bool(stats.shapiro(values).pvalue >= SHAPIRO_ALPHA)


def numeric_test(x: Iterable[Any], y: Iterable[Any]) -> tuple[float, str]:
    """Compare a number between two groups (SPEC §5): (two-sided p, test name).

    Student's t-test (equal variances) when both groups pass Shapiro-Wilk at
    0.05, else Mann-Whitney U with the normal approximation, the tie
    correction and no continuity correction, as SPSS reports it. A group of
    fewer than 3 values, or of a single repeated value, cannot pass
    Shapiro-Wilk and goes to Mann-Whitney. Missing values (None, NaN) are
    left out. Without a value in one of the groups, or when every value is
    the same, there is nothing to test: (NaN, "not computed").
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
        name = FISHER if counts.shape == (2, 2) else FREEMAN_HALTON
        return freeman_halton_p(counts.tolist()), name
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
class _Categorical:
    """A categorical Table 1 variable: a category per subject (None: missing)."""

    name: str
    categorize: Callable[[pd.DataFrame], pd.Series]
    order: Callable[[pd.Series], list[Hashable]]
    label: Callable[[Hashable], str]
    numeric_test_column: str | None = None  # tested as this number instead


@dataclass(frozen=True)
class _Numeric:
    name: str
    column: str


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _fixed_order(first: Sequence[Hashable]) -> Callable[[pd.Series], list[Hashable]]:
    def order(values: pd.Series) -> list[Hashable]:
        present = values.dropna()
        known = [value for value in first if (present == value).any()]
        others = present[~present.isin(list(first))].value_counts()
        rest = sorted(others.index, key=lambda value: (-others[value], str(value)))
        return [*known, *rest]

    return order


def _by_frequency(ties: Sequence[Hashable]) -> Callable[[pd.Series], list[Hashable]]:
    rank = {value: i for i, value in enumerate(ties)}

    def order(values: pd.Series) -> list[Hashable]:
        frequencies = values.dropna().value_counts()
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


def _text(column: str) -> Callable[[pd.DataFrame], pd.Series]:
    def categorize(subjects: pd.DataFrame) -> pd.Series:
        return (
            subjects[column]
            .astype("object")
            .map(lambda v: None if _is_missing(v) else str(v).strip() or None)
        )

    return categorize


def _ecog(subjects: pd.DataFrame) -> pd.Series:
    numbers = pd.to_numeric(subjects["ecog_baseline"], errors="coerce").astype(float)
    return numbers.map(lambda v: None if math.isnan(v) else _format_number(v)).astype("object")


def _numeric_category(
    column: str, classify: Callable[[float], Hashable]
) -> Callable[[pd.DataFrame], pd.Series]:
    def categorize(subjects: pd.DataFrame) -> pd.Series:
        numbers = pd.to_numeric(subjects[column], errors="coerce").astype(float)
        return numbers.map(lambda v: None if math.isnan(v) else classify(v)).astype("object")

    return categorize


TABLE1_VARIABLES: list[_Categorical | _Numeric] = [
    _Categorical(
        "Gender",
        _text("sex"),
        _fixed_order(list(SEX_LABELS)),
        lambda v: SEX_LABELS.get(str(v), str(v)),
    ),
    _Numeric("Age", "age"),
    _Categorical("ECOG", _ecog, lambda v: sorted(v.dropna().unique(), key=float), str),
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
    values = set(flags.astype(object))
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

        categories = variable.categorize(subjects)
        has_value = categories.notna()
        ordered = variable.order(categories)
        counts = {
            "all": categories[has_value].value_counts(),
            "no_hpd": categories[has_value & ~flags].value_counts(),
            "hpd": categories[has_value & flags].value_counts(),
        }
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
    t = pd.to_numeric(pd.Series(list(time), dtype="object"), errors="coerce").to_numpy(float)
    e_series = pd.Series(list(event), dtype="object")
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
    """
    t, e = _survival_data(time, event)
    rows: list[dict[str, Any]] = []
    at_risk = len(t)
    survival = 1.0
    greenwood = 0.0
    for moment in np.unique(t):
        here = t == moment
        deaths = int(np.sum(e & here))
        censored = int(np.sum(~e & here))
        if deaths:
            survival *= 1.0 - deaths / at_risk
            greenwood = (
                greenwood + deaths / (at_risk * (at_risk - deaths))
                if at_risk > deaths
                else math.inf
            )
        if survival >= 1.0:
            lower = upper = 1.0
        elif survival <= 0.0 or math.isinf(greenwood):
            lower = upper = math.nan
        else:
            se = math.sqrt(greenwood) / abs(math.log(survival))
            # log(-log S) ± z·se; S = exp(-exp(.)) is decreasing in it.
            lower = survival ** math.exp(Z_95 * se)
            upper = survival ** math.exp(-Z_95 * se)
        rows.append(
            {
                "time": float(moment),
                "at_risk": at_risk,
                "events": deaths,
                "censored": censored,
                "survival": survival,
                "ci_lower": lower,
                "ci_upper": upper,
            }
        )
        at_risk -= deaths + censored
    return pd.DataFrame(rows, columns=KM_COLUMNS).astype(
        {"time": float, "at_risk": "int64", "events": "int64", "censored": "int64"}
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


def logrank_test(time: Iterable[Any], event: Iterable[Any], group: Iterable[Any]) -> float:
    """Two-sided log-rank p-value: χ² with k-1 degrees of freedom for k groups.

    At every death time, each group's expected deaths are its share of those
    at risk; the statistic is (O-E)ᵀ V⁻¹ (O-E) over k-1 groups, with the
    hypergeometric covariance V. Rows with a missing time, event or group are
    left out. NaN with fewer than two groups or no death.
    """
    frame = pd.DataFrame(
        {
            "time": pd.to_numeric(pd.Series(list(time), dtype="object"), errors="coerce"),
            "event": pd.Series(list(event), dtype="object"),
            "group": pd.Series(list(group), dtype="object"),
        }
    )
    frame = frame[frame["time"].notna() & frame["event"].notna() & frame["group"].notna()]
    labels = sorted(frame["group"].unique(), key=str)
    k = len(labels)
    if k < 2:
        return math.nan
    t = frame["time"].to_numpy(float)
    e = frame["event"].astype(bool).to_numpy()
    g = np.array([labels.index(value) for value in frame["group"]])
    observed_minus_expected = np.zeros(k)
    covariance = np.zeros((k, k))
    for moment in np.unique(t[e]):
        at_risk = np.array([np.sum((t >= moment) & (g == j)) for j in range(k)], dtype=float)
        deaths = np.array([np.sum((t == moment) & e & (g == j)) for j in range(k)], dtype=float)
        n = at_risk.sum()
        d = deaths.sum()
        observed_minus_expected += deaths - d * at_risk / n
        if n > 1:
            share = at_risk / n
            factor = d * (n - d) / (n - 1)
            covariance += factor * (np.diag(share) - np.outer(share, share))
    if not np.any(e):
        return math.nan
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

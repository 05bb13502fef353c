"""The core kinetics table: what the benchmark's three implementations compute.

`analytics.tumor_kinetics` (the dbt models), a plain pandas implementation
(`hpd.baseline_pandas`) and one hand-written DuckDB SQL script
(`hpd.baseline_sql`) each produce these columns for every treated subject of
a folder of exports, for the investigator read. `compare` says where two of
them differ; the benchmark prints figures only when all three agree.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import pandas as pd

KEY = "usubjid"
DATE_COLUMNS = ("first_dose_date", "pre_baseline_date", "baseline_date", "first_evaluation_date")
NUMBER_COLUMNS = (
    "target_sum_pre_mm",
    "target_sum_baseline_mm",
    "target_sum_first_evaluation_mm",
    "s_pre_mm",
    "s_baseline_mm",
    "s_first_evaluation_mm",
    "months_pre",
    "months_post",
    "tgk_pre",
    "tgk_post",
    "tgkr",
    "tgr_pre",
    "tgr_post",
)
COLUMNS = (KEY, "evaluability", *DATE_COLUMNS, *NUMBER_COLUMNS)
RELATIVE_TOLERANCE = 1e-9


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """The core columns in a comparable shape: dates as `date`, numbers as
    float (None for null), sorted by subject."""
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"core kinetics table lacks {', '.join(missing)}")
    out = frame.loc[:, list(COLUMNS)].copy()
    for column in DATE_COLUMNS:
        out[column] = [_as_date(value) for value in out[column]]
    for column in NUMBER_COLUMNS:
        out[column] = [None if _is_null(value) else float(value) for value in out[column]]
    out[KEY] = out[KEY].astype(str)
    out["evaluability"] = out["evaluability"].astype(str)
    return out.sort_values(KEY, ignore_index=True)


def compare(left: pd.DataFrame, right: pd.DataFrame, limit: int = 5) -> list[str]:
    """Differences between two core kinetics tables (empty when they agree):
    the same subjects, the same statuses and dates, numbers equal within a
    relative 1e-9 (nulls equal only to nulls)."""
    a, b = normalise(left), normalise(right)
    only_left = sorted(set(a[KEY]) - set(b[KEY]))
    only_right = sorted(set(b[KEY]) - set(a[KEY]))
    differences: list[str] = []
    if only_left or only_right:
        differences.append(
            f"subjects differ: {len(only_left)} only in the first ({only_left[:3]}), "
            f"{len(only_right)} only in the second ({only_right[:3]})"
        )
        return differences
    for column in COLUMNS[1:]:
        for subject, x, y in zip(a[KEY], a[column], b[column], strict=True):
            if not _equal(x, y):
                differences.append(f"{subject} {column}: {x!r} vs {y!r}")
                if len(differences) >= limit:
                    return differences
    return differences


def _equal(x: Any, y: Any) -> bool:
    if _is_null(x) or _is_null(y):
        return _is_null(x) and _is_null(y)
    if isinstance(x, float) and isinstance(y, float):
        return math.isclose(x, y, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-12)
    return bool(x == y)


def _is_null(value: Any) -> bool:
    return (
        value is None
        or value is pd.NaT
        or value is pd.NA
        or (isinstance(value, float) and math.isnan(value))
    )


def _as_date(value: Any) -> date | None:
    if _is_null(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])

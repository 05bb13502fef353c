"""Comparing the marts of two warehouses: the same tables, columns, rows (in
any order) and values (floats to a relative 1e-9). Shared by the PostgreSQL
and Spark tests, each against the DuckDB build of the same exports."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

MART_SCHEMAS = ("analytics", "analytics_deid")
RELATIVE_TOLERANCE = 1e-9

# Table name -> (column names, rows as tuples of plain values).
Tables = dict[str, tuple[list[str], list[tuple[Any, ...]]]]


def plain_value(value: Any) -> Any:
    """A value as every engine's client can give it: decimals as floats,
    dates as ISO text."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _sort_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Order-independent comparison: floats rounded in the key, so values
    within the tolerance sort alike."""
    return tuple(
        (1, "") if value is None
        else (0, f"{value:.6e}") if isinstance(value, float)
        else (0, str(value))
        for value in row
    )  # fmt: skip


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        if math.isnan(left) or math.isnan(right):
            return math.isnan(left) and math.isnan(right)
        return left == right or math.isclose(left, right, rel_tol=RELATIVE_TOLERANCE)
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if isinstance(left, int) and isinstance(right, float):
        return float(left) == right
    if isinstance(left, float) and isinstance(right, int):
        return left == float(right)
    return bool(left == right)


def duckdb_tables(warehouse: Path, schema: str) -> Tables:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables where table_schema = ? "
                "and table_catalog = current_database() order by 1",
                [schema],
            ).fetchall()
        ]
        tables = {}
        for name in names:
            cursor = con.execute(f'select * from {schema}."{name}"')
            columns = [column[0] for column in cursor.description or []]
            rows = [tuple(plain_value(v) for v in row) for row in cursor.fetchall()]
            tables[name] = (columns, rows)
    return tables


def table_differences(schema: str, ours: Tables, theirs: Tables, engine: str) -> list[str]:
    """Every difference between the DuckDB tables of a schema (`ours`) and
    another engine's (`theirs`)."""
    problems: list[str] = []
    if set(ours) != set(theirs):
        problems.append(f"{schema}: tables {sorted(ours)} on DuckDB, {sorted(theirs)} on {engine}")
    for name in sorted(set(ours) & set(theirs)):
        (columns, rows), (other_columns, other_rows) = ours[name], theirs[name]
        where = f"{schema}.{name}"
        if columns != other_columns:
            problems.append(f"{where}: columns {columns} vs {other_columns}")
            continue
        if len(rows) != len(other_rows):
            problems.append(f"{where}: {len(rows)} rows on DuckDB, {len(other_rows)} on {engine}")
            continue
        for row, other_row in zip(
            sorted(rows, key=_sort_key), sorted(other_rows, key=_sort_key), strict=True
        ):
            differing = [
                f"{column}: {left!r} vs {right!r}"
                for column, left, right in zip(columns, row, other_row, strict=True)
                if not _same(left, right)
            ]
            if differing:
                problems.append(f"{where}: {'; '.join(differing[:4])} (row {row[:3]})")
                break
    return problems

"""The data-quality gate (SPEC §8): Great Expectations suites over DuckDB profiles.

Two suites live in the file-backed GX context of `gx/` at the repository root:

- `exports` runs before the dbt build, on the loaded `raw` schema (controlled
  terminology, dates, diameters, subjects, lesions, duplicates);
- `marts` runs after it, on schema `analytics` (grain and keys, attrition,
  kinetics present exactly for evaluable subjects, ratios consistent with
  their parts, rows in = rows used + rows rejected).

GX 1.x has no DuckDB dialect, and an export may hold tens of millions of TR
rows, so GX never sees the rows themselves. Each check is SQL that DuckDB runs
on the warehouse and that returns a small *profile*: the distinct values of a
column with their counts, a minimum and a maximum, or the number of offending
rows, each with the file, first row and column where it occurs. The profiles
of one suite are stacked into one pandas DataFrame (one column per check,
null on the other checks' rows) that a checkpoint validates. Every
expectation carries `meta: {severity, check, description}`; a failed one
becomes a one-line message naming the file, the first offending row and the
column, e.g. `tr.csv, row 12, column TRSTRESU: unit 'in' is not mm, cm or
blank (3 rows)`.

The suites, the pandas datasource and its assets, the validation definitions
and the checkpoints are declared here and saved in `gx/`; whatever is missing
or stale there (a fresh clone has no `gx/uncommitted/`) is (re)created on first
use. Validation results are kept in memory only (the committed context's
results store), so scheduled refreshes leave no history in `gx/`;
`build_data_docs` renders the results it is given into a reports folder.
"""

from __future__ import annotations

import contextlib
import copy
import html
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb
import pandas as pd

from hpd.errors import DataError, location
from hpd.project import PROJECT_DIR, DomainSpec, sdtm_domains
from hpd.warehouse import DuckDBWarehouse, PostgresWarehouse, SparkWarehouse, Warehouse

if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
    )
    from great_expectations.data_context.data_context.file_data_context import FileDataContext
    from great_expectations.expectations.expectation import Expectation

Severity = Literal["blocking", "warning"]
Kind = Literal["in_set", "zero", "between"]

EXPORTS_SUITE = "exports"
MARTS_SUITE = "marts"
DATASOURCE = "hpd_quality"
BATCH_DEFINITION = "whole_profile"
DATA_DOCS_SITE = "hpd_reports"
MAX_DISTINCT_VALUES = 1000  # distinct values kept per profiled column

LESION_CLASSES = ("TARGET", "NON-TARGET", "NEW")
TEST_CODES = ("LDIAM", "LPERP", "TUMSTATE", "DIAMETER", "SUMDIAM", "VOLUME")
LENGTH_TESTS = ("LDIAM", "LPERP", "DIAMETER", "SUMDIAM")  # results in mm or cm
DIAMETER_TESTS = ("LDIAM", "LPERP", "DIAMETER")  # one lesion's size
UNITS = ("mm", "cm", "")
EVALUATORS = ("INVESTIGATOR", "INDEPENDENT ASSESSOR", "")
DATE_FORMATS = ("YYYY-MM-DD", "YYYY-MM-DD with a time", "YYYY-MM", "YYYY")
EVALUABILITY = (
    "no_baseline_scan",
    "no_first_evaluation",
    "no_pre_baseline_scan",
    "incomplete_measurements",
    "evaluable",
)
MAX_DIAMETER_MM = 500.0
EARLIEST_DATE = "1900-01-01"
RELATIVE_TOLERANCE = 1e-9

_FULL_DATE = "'^[0-9]{4}-[0-9]{2}-[0-9]{2}$'"
_FULL_DATE_TIME = "'^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ].*$'"
_MONTH = "'^[0-9]{4}-[0-9]{2}$'"
_YEAR = "'^[0-9]{4}$'"
_NUMBER = "'^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$'"


# ---------------------------------------------------------------------------
# Profiles and checks


@dataclass(frozen=True)
class ProfileRow:
    """One row of a profile: where a value occurs first, how often, and the
    measure the check's expectation judges (a value, a minimum or maximum, or
    a number of offending rows)."""

    file: str | None
    row: int | None
    key: str | None
    column: str | None
    value: str | None
    detail: str | None
    rows: int
    measure: str | float | None
    error: str | None = None  # the check's SQL failed


Collector = Callable[[duckdb.DuckDBPyConnection], list[ProfileRow]]


@dataclass(frozen=True)
class Check:
    """A quality check: the SQL that profiles it and the expectation on that profile.

    `kind` is the expectation: `in_set` (every profiled value is one of
    `allowed`), `zero` (no offending row) or `between` (every profiled
    number within `min_value`..`max_value`). The check's id is also the name
    of its column in the suite's profile frame.
    """

    id: str
    severity: Severity
    description: str
    kind: Kind
    collect: Collector
    problem: Callable[[ProfileRow], str]
    allowed: tuple[str, ...] = ()
    min_value: float | None = None
    max_value: float | None = None
    noun: str | None = "row"  # what the count in the message counts; None: no count

    def expectation(self) -> Expectation:
        from great_expectations.expectations.core.expect_column_values_to_be_between import (
            ExpectColumnValuesToBeBetween,
        )
        from great_expectations.expectations.core.expect_column_values_to_be_in_set import (
            ExpectColumnValuesToBeInSet,
        )
        from great_expectations.expectations.metadata_types import FailureSeverity

        common: dict[str, Any] = {
            "column": self.id,
            "meta": {"severity": self.severity, "check": self.id, "description": self.description},
            "description": self.description,
            "severity": (
                FailureSeverity.CRITICAL if self.severity == "blocking" else FailureSeverity.WARNING
            ),
        }
        if self.kind == "in_set":
            return ExpectColumnValuesToBeInSet(value_set=list(self.allowed), **common)
        if self.kind == "zero":
            return ExpectColumnValuesToBeBetween(min_value=0, max_value=0, **common)
        return ExpectColumnValuesToBeBetween(
            min_value=self.min_value, max_value=self.max_value, **common
        )


@dataclass(frozen=True)
class Issue:
    """A failed check: its id, severity and one-line message."""

    check: str
    severity: Severity
    message: str


@dataclass
class QualityResult:
    """The outcome of one suite."""

    suite: str
    evaluated: int
    blocking_failures: list[str]
    warnings: list[str]
    issues: list[Issue]
    validation_results: list[ExpectationSuiteValidationResult]
    profile: pd.DataFrame = field(repr=False)
    seconds: float = 0.0

    @property
    def success(self) -> bool:
        """True when no blocking check failed (warnings do not count)."""
        return not self.blocking_failures

    def failed(self, check: str) -> list[Issue]:
        return [issue for issue in self.issues if issue.check == check]

    def raise_for_blocking(self) -> None:
        """Stop the refresh with the first blocking failure as a one-line error."""
        if self.blocking_failures:
            more = len(self.blocking_failures) - 1
            suffix = f" (and {more} more blocking data-quality failures)" if more else ""
            raise DataError(self.blocking_failures[0] + suffix)


# ---------------------------------------------------------------------------
# SQL building blocks (they mirror the staging macros: blanks are null,
# values are trimmed, dates and numbers parse as `sdtm_date` and
# `try_cast_number` parse them)


def _text(column: str) -> str:
    return f"nullif(trim({column}), '')"


def _number(column: str) -> str:
    text = _text(column)
    return f"(case when regexp_matches({text}, {_NUMBER}) then try_cast({text} as double) end)"


def _date(column: str) -> str:
    text = _text(column)
    return (
        "(case"
        f" when regexp_matches({text}, '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}([T ].*)?$')"
        f" then try_cast(substr({text}, 1, 10) as date)"
        f" when regexp_matches({text}, {_MONTH}) then try_cast({text} || '-01' as date)"
        f" when regexp_matches({text}, {_YEAR}) then try_cast({text} || '-01-01' as date)"
        " end)"
    )


def _date_latest(column: str) -> str:
    """The last day a date can mean: a partial date's month or year ends later."""
    text = _text(column)
    return (
        f"(case when regexp_matches({text}, {_MONTH}) then last_day({_date(column)})"
        f" when regexp_matches({text}, {_YEAR})"
        f" then cast({_date(column)} + interval 1 year - interval 1 day as date)"
        f" else {_date(column)} end)"
    )


def _date_format(column: str) -> str:
    text = _text(column)
    return (
        "(case"
        f" when regexp_matches({text}, {_FULL_DATE}) and try_cast({text} as date) is not null"
        f" then '{DATE_FORMATS[0]}'"
        f" when regexp_matches({text}, {_FULL_DATE_TIME})"
        f" and try_cast(substr({text}, 1, 10) as date) is not null then '{DATE_FORMATS[1]}'"
        f" when regexp_matches({text}, {_MONTH}) and try_cast({text} || '-01' as date) is not null"
        f" then '{DATE_FORMATS[2]}'"
        f" when regexp_matches({text}, {_YEAR}) and try_cast({text} || '-01-01' as date)"
        f" is not null then '{DATE_FORMATS[3]}'"
        " else 'unreadable' end)"
    )


def _reader(eval_column: str, evalid_column: str) -> str:
    evaluator = _text(eval_column)
    return (
        f"(case when {evaluator} is null or upper({evaluator}) = 'INVESTIGATOR'"
        " then 'INVESTIGATOR'"
        f" else upper({evaluator}) || ': ' || coalesce({_text(evalid_column)}, '') end)"
    )


def _sql_list(values: Iterable[str]) -> str:
    return ", ".join("'" + value.replace("'", "''") + "'" for value in values)


def _tables(con: duckdb.DuckDBPyConnection, schema: str) -> dict[str, set[str]]:
    rows = con.execute(
        "select table_name, column_name from information_schema.columns where table_schema = ?",
        [schema],
    ).fetchall()
    tables: dict[str, set[str]] = {}
    for table, column in rows:
        tables.setdefault(str(table).lower(), set()).add(str(column).lower())
    return tables


def _domains(con: duckdb.DuckDBPyConnection) -> list[DomainSpec]:
    """The SDTM domains whose raw table is loaded with every contract column."""
    tables = _tables(con, "raw")
    return [
        spec
        for spec in sdtm_domains()
        if set(spec.columns) | {"_file_name", "_row_number"} <= tables.get(spec.name, set())
    ]


def _domain(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return any(spec.name == name for spec in _domains(con))


def _file_name(con: duckdb.DuckDBPyConnection, domain: str) -> str:
    row = con.execute(f"select any_value(_file_name) from raw.{domain}").fetchone()
    return str(row[0]) if row and row[0] is not None else f"{domain}.csv"


def _summary(
    con: duckdb.DuckDBPyConnection, offending_sql: str, weighted: bool = False
) -> ProfileRow:
    """Count the offending rows of `offending_sql` and describe the first.

    The query yields one row per offending row (or group of `w` offending
    rows) with the columns `f` (file or table), `o` (order: the first
    offending row is the least), `r` (row number), `k` (key), `c` (column),
    `v` (value), `d` (detail) and, when `weighted`, `w` (how many rows).
    """
    weight = "w" if weighted else "1"
    row = con.execute(
        f"select coalesce(sum({weight}), 0), arg_min(f, o), arg_min(r, o), arg_min(k, o),"
        f" arg_min(c, o), arg_min(v, o), arg_min(d, o) from ({offending_sql})"
    ).fetchone()
    assert row is not None
    count = int(row[0])
    return ProfileRow(
        file=_str(row[1]),
        row=int(row[2]) if row[2] is not None else None,
        key=_str(row[3]),
        column=_str(row[4]),
        value=_str(row[5]),
        detail=_str(row[6]),
        rows=count,
        measure=float(count),
    )


def _grouped(domain: str, columns: Sequence[str]) -> str:
    """The distinct combinations of some raw columns, each with its file `f`,
    its number of rows `n` and its first row `r`.

    Checks normalise and parse these combinations rather than the rows: an
    export of millions of rows holds few distinct units, dates or visits, so
    the regular expressions run on a small relation.
    """
    listed = ", ".join(columns)
    return f"""
        (select {listed}, any_value(_file_name) as f, count(*) as n, min(_row_number) as r
        from raw.{domain}
        group by {listed})
    """


def _distinct(
    con: duckdb.DuckDBPyConnection,
    domain: str,
    column: str,
    measure: str,
    where: str = "true",
    extra: Sequence[str] = (),
) -> list[ProfileRow]:
    """The distinct values of one raw column (normalised by `measure`), with
    how many rows carry each and where each occurs first. `where` may use the
    raw columns `extra` as well as `column`."""
    rows = con.execute(
        f"""
        select any_value(f), min(r), arg_min(trim({column}), r), sum(n), {measure} as measure
        from {_grouped(domain, [column, *extra])}
        where {where}
        group by measure
        order by min(r)
        limit {MAX_DISTINCT_VALUES}
        """
    ).fetchall()
    return [
        ProfileRow(
            file=_str(file_name),
            row=int(first_row),
            key=None,
            column=column.upper(),
            value=_str(value),
            detail=None,
            rows=int(count),
            measure=None if value_measure is None else str(value_measure),
        )
        for file_name, first_row, value, count, value_measure in rows
    ]


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# ---------------------------------------------------------------------------
# Exports (schema `raw`, before the build)


def _required_columns(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    tables = _tables(con, "raw")
    profile = []
    for spec in sdtm_domains():
        columns = tables.get(spec.name)
        file_name = _file_name(con, spec.name) if columns and "_file_name" in columns else None
        for column in spec.required:
            present = columns is not None and column in columns
            profile.append(
                ProfileRow(
                    file=file_name or f"{spec.name}.csv",
                    row=None,
                    key=None,
                    column=column.upper(),
                    value=None,
                    detail=None if columns is not None else "file",
                    rows=0,
                    measure="present" if present else "missing",
                )
            )
    return profile


def _dm_unique_subject(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    if not _domain(con, "dm"):
        return []
    return [
        _summary(
            con,
            f"""
            select _file_name as f, _row_number as o, _row_number as r, null as k,
                'USUBJID' as c, subject as v, null as d
            from (
                select _file_name, _row_number, {_text("usubjid")} as subject,
                    row_number() over (partition by {_text("usubjid")} order by _row_number)
                        as seen
                from raw.dm
            )
            where subject is not null and seen > 1
            """,
        )
    ]


def _subject_in_dm(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    domains = {spec.name for spec in _domains(con)}
    if "dm" not in domains:
        return []
    return [
        _summary(
            con,
            f"""
            select f, r as o, r, null as k, 'USUBJID' as c, {_text("usubjid")} as v,
                null as d, n as w
            from {_grouped(domain, ["usubjid"])}
            where {_text("usubjid")} is not null
                and {_text("usubjid")} not in (
                    select {_text("usubjid")} from raw.dm where {_text("usubjid")} is not null
                )
            """,
            weighted=True,
        )
        for domain in ("ex", "tu", "tr", "ds", "qs", "sc")
        if domain in domains
    ]


def _blank(column: str) -> str:
    """`nullif(trim(column), '') is null`, cheaper (DuckDB's trim strips spaces only)."""
    return (
        f"({column} is null or {column} = ''"
        f" or (starts_with({column}, ' ') and trim({column}) = ''))"
    )


def _required_values(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    profile = []
    for spec in _domains(con):
        conditions = []
        for column in spec.required:
            blank = _blank(column)
            if spec.name == "tr" and column == "trdtc":
                # Staging keys an undated TR row by VISITNUM or VISIT.
                blank += f" and {_blank('visitnum')} and {_blank('visit')}"
            conditions.append(blank)
        # One scan of the table counts the blanks of every required column.
        aggregates = ", ".join(
            f"count(*) filter (where {blank}), min(_row_number) filter (where {blank})"
            for blank in conditions
        )
        row = con.execute(
            f"select any_value(_file_name), {aggregates} from raw.{spec.name}"
        ).fetchone()
        assert row is not None
        for index, column in enumerate(spec.required):
            count, first = row[1 + 2 * index], row[2 + 2 * index]
            profile.append(
                ProfileRow(
                    file=_str(row[0]),
                    row=int(first) if first is not None else None,
                    key=None,
                    column=column.upper(),
                    value=None,
                    detail=None,
                    rows=int(count),
                    measure=float(count),
                )
            )
    return profile


def _lesion_classes(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    if not _domain(con, "tu"):
        return []
    return [
        row
        for column in ("tuorres", "tustresc")
        for row in _distinct(
            con, "tu", column, f"upper({_text(column)})", f"{_text(column)} is not null"
        )
    ]


def _test_codes(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    if not _domain(con, "tr"):
        return []
    return _distinct(
        con, "tr", "trtestcd", f"upper({_text('trtestcd')})", f"{_text('trtestcd')} is not null"
    )


def _units(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    if not _domain(con, "tr"):
        return []
    length_test = f"upper({_text('trtestcd')}) in ({_sql_list(LENGTH_TESTS)})"
    return _distinct(
        con,
        "tr",
        "trstresu",
        f"coalesce(lower({_text('trstresu')}), '')",
        f"{length_test} and {_text('trstresn')} is not null",
        extra=("trtestcd", "trstresn"),
    ) + _distinct(
        con,
        "tr",
        "trorresu",
        f"coalesce(lower({_text('trorresu')}), '')",
        f"{length_test} and {_number('trstresn')} is null and {_number('trorres')} is not null",
        extra=("trtestcd", "trstresn", "trorres"),
    )


def _evaluators(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    domains = {spec.name for spec in _domains(con)}
    return [
        row
        for domain, column in (("tu", "tueval"), ("tr", "treval"))
        if domain in domains
        for row in _distinct(con, domain, column, f"coalesce(upper({_text(column)}), '')")
    ]


def _date_columns(spec: DomainSpec) -> list[str]:
    return [column for column in spec.columns if column.endswith("dtc")]


def _date_formats(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    return [
        row
        for spec in _domains(con)
        for column in _date_columns(spec)
        for row in _distinct(
            con, spec.name, column, _date_format(column), f"{_text(column)} is not null"
        )
    ]


def _date_range(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    profile = []
    for spec in _domains(con):
        for column in _date_columns(spec):
            profile.append(
                _summary(
                    con,
                    f"""
                    select f, r as o, r, null as k, '{column.upper()}' as c,
                        {_text(column)} as v,
                        case when parsed < date '{EARLIEST_DATE}' then 'before 1900'
                            else 'after today (' || cast(current_date as varchar) || ')'
                        end as d,
                        n as w
                    from (
                        select *, {_date(column)} as parsed
                        from {_grouped(spec.name, [column])}
                    )
                    where parsed < date '{EARLIEST_DATE}' or parsed > current_date
                    """,
                    weighted=True,
                )
            )
    return profile


def _scan_after_death(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    domains = {spec.name for spec in _domains(con)}
    if not {"dm", "tr"} <= domains:
        return []
    ds_death = (
        f"""
        select {_text("usubjid")} as subject, min({_date_latest("dsstdtc")}) as death_date,
            arg_min({_text("dsstdtc")}, {_date_latest("dsstdtc")}) as death_text
        from raw.ds where upper({_text("dsdecod")}) = 'DEATH' group by subject
        """
        if "ds" in domains
        else "select null::varchar as subject, null::date as death_date,"
        " null::varchar as death_text limit 0"
    )
    return [
        _summary(
            con,
            f"""
            with dm_death as (
                select {_text("usubjid")} as subject, min({_date_latest("dthdtc")}) as death_date,
                    arg_min({_text("dthdtc")}, {_date_latest("dthdtc")}) as death_text
                from raw.dm group by subject
            ),
            ds_death as ({ds_death}),
            death as (
                select coalesce(dm_death.subject, ds_death.subject) as subject,
                    coalesce(dm_death.death_date, ds_death.death_date) as death_date,
                    case when dm_death.death_date is not null then dm_death.death_text
                        else ds_death.death_text end as death_text
                from dm_death full join ds_death on dm_death.subject = ds_death.subject
                where coalesce(dm_death.death_date, ds_death.death_date) is not null
            ),
            scans as (
                select f, r, n, {_text("usubjid")} as subject, {_text("trdtc")} as scan_text,
                    {_date("trdtc")} as scan_date
                from {_grouped("tr", ["usubjid", "trdtc"])}
            )
            select scans.f, scans.r as o, scans.r, null as k, 'TRDTC' as c,
                scans.scan_text as v,
                'subject ''' || scans.subject || ''' on ' || death.death_text as d,
                scans.n as w
            from scans
            inner join death on scans.subject = death.subject
            where scans.scan_date > death.death_date
            """,
            weighted=True,
        )
    ]


def _diameters(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    if not _domain(con, "tr"):
        return []
    standard, original = _number("trstresn"), _number("trorres")
    results = _grouped(
        "tr", ["trtestcd", "trstat", "trstresc", "trstresn", "trstresu", "trorres", "trorresu"]
    )
    measured = f"""
        select f, n, r,
            coalesce({standard}, {original}) as number,
            case when {standard} is not null then {_text("trstresn")} else {_text("trorres")} end
                as number_text,
            case when {standard} is not null then 'TRSTRESN' else 'TRORRES' end as number_column,
            case when {standard} is not null then coalesce(lower({_text("trstresu")}), '')
                else coalesce(lower({_text("trorresu")}), '') end as unit
        from {results}
        where upper({_text("trtestcd")}) in ({_sql_list(DIAMETER_TESTS)})
            and coalesce(upper({_text("trstat")}), '') <> 'NOT DONE'
            and coalesce(upper({_text("trstresc")}), '') not in ('ABSENT', 'NOT PRESENT')
            and coalesce({standard}, {original}) is not null
    """
    in_mm = f"""
        select *, case unit when 'cm' then number * 10 else number end as mm,
            number_text || ' ' || coalesce(nullif(unit, ''), 'mm') as shown
        from ({measured}) where unit in ('mm', 'cm', '')
    """
    low, high = "mm < 0", f"mm > {MAX_DIAMETER_MM}"
    row = con.execute(
        f"""
        select any_value(f), min(mm), max(mm),
            coalesce(sum(n) filter (where {low}), 0), min(r) filter (where {low}),
            arg_min(number_column, r) filter (where {low}), arg_min(shown, r) filter (where {low}),
            coalesce(sum(n) filter (where {high}), 0), min(r) filter (where {high}),
            arg_min(number_column, r) filter (where {high}), arg_min(shown, r) filter (where {high})
        from ({in_mm})
        """
    ).fetchone()
    if row is None or row[1] is None:
        return []
    file_name = _str(row[0])
    profile = []
    for measure, offset, detail in ((row[1], 3, "minimum"), (row[2], 7, "maximum")):
        count, first, column, value = row[offset : offset + 4]
        profile.append(
            ProfileRow(
                file=file_name,
                row=int(first) if first is not None else None,
                key=None,
                column=_str(column),
                value=_str(value),
                detail=detail,
                rows=int(count),
                measure=float(measure),
            )
        )
    return profile


def _lesions_in_tu(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    domains = {spec.name for spec in _domains(con)}
    if not {"tu", "tr"} <= domains:
        return []
    return [
        _summary(
            con,
            f"""
            with identified as (
                select distinct {_text("usubjid")} as subject,
                    {_reader("tueval", "tuevalid")} as reader, {_text("tulnkid")} as lesion
                from {_grouped("tu", ["usubjid", "tueval", "tuevalid", "tulnkid"])}
            ),
            measured as (
                select f, r, n, {_text("usubjid")} as subject,
                    {_reader("treval", "trevalid")} as reader, {_text("trlnkid")} as lesion
                from {_grouped("tr", ["usubjid", "treval", "trevalid", "trlnkid"])}
                where {_text("usubjid")} is not null and {_text("trlnkid")} is not null
            )
            select f, r as o, r, null as k, 'TRLNKID' as c, measured.lesion as v,
                'subject ''' || measured.subject || ''''
                    || case when measured.reader <> 'INVESTIGATOR'
                        then ', reader ' || measured.reader else '' end as d,
                n as w
            from measured
            anti join identified
                on measured.subject = identified.subject
                and measured.reader = identified.reader
                and measured.lesion = identified.lesion
            """,
            weighted=True,
        )
    ]


def _measured_once(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    if not _domain(con, "tr"):
        return []
    keys = "subject, reader, lesion, test, assessment"
    # VISITNUM, TRDTC and the reader are parsed once per distinct value, and
    # joined back to the rows (IS NOT DISTINCT FROM: blanks match blanks).
    return [
        _summary(
            con,
            f"""
            with visits as (
                select visitnum, cast({_number("visitnum")} as varchar) as number
                from (select distinct visitnum from raw.tr)
            ),
            dates as (
                select trdtc, {_date("trdtc")} as result_date,
                    substr({_text("trdtc")}, 1, 10) as date_key
                from (select distinct trdtc from raw.tr)
            ),
            readers as (
                select treval, trevalid, {_reader("treval", "trevalid")} as reader
                from (select distinct treval, trevalid from raw.tr)
            ),
            measurements as (
                select tr._file_name, tr._row_number, {_text("tr.usubjid")} as subject,
                    readers.reader, {_text("tr.trlnkid")} as lesion,
                    upper({_text("tr.trtestcd")}) as test,
                    case when visits.number is not null then 'VISITNUM ' || visits.number
                        when {_text("tr.visit")} is not null
                            then 'VISIT ' || upper({_text("tr.visit")})
                        when dates.date_key is not null then 'DATE ' || dates.date_key
                    end as assessment,
                    dates.result_date
                from raw.tr
                left join visits on tr.visitnum is not distinct from visits.visitnum
                left join dates on tr.trdtc is not distinct from dates.trdtc
                left join readers on tr.treval is not distinct from readers.treval
                    and tr.trevalid is not distinct from readers.trevalid
            ),
            repeated as (
                select {keys}, count(*) as n
                from measurements
                where subject is not null and lesion is not null and test is not null
                    and assessment is not null
                group by {keys}
                having count(*) > 1
            ),
            ranked as (
                -- Staging keeps the latest-dated row, then the last in the file
                -- (SPEC rule 6); the others are the offending rows.
                select measurements.*, repeated.n,
                    row_number() over (
                        partition by {keys}
                        order by result_date desc nulls last, _row_number desc
                    ) as kept_order
                from measurements
                inner join repeated using ({keys})
            )
            select _file_name as f, _row_number as o, _row_number as r, null as k,
                'TRLNKID' as c, lesion as v,
                'subject ''' || subject || ''' is measured ' || n || ' times at ' || assessment
                    || ' by test ' || test
                    || case when reader <> 'INVESTIGATOR' then ' (reader ' || reader || ')'
                        else '' end as d
            from ranked
            where kept_order > 1
            """,
        )
    ]


def _template(text: str) -> Callable[[ProfileRow], str]:
    """A problem text from a template on the first offending profile row."""
    return lambda row: text.format(value=row.value, detail=row.detail, column=row.column)


def _date_problem(row: ProfileRow) -> str:
    return f"date {row.value!r} is {row.detail}"


def _diameter_problem(row: ProfileRow) -> str:
    value = row.value or ""
    number, _, unit = value.partition(" ")
    shown = f"{number} {unit}"
    if unit == "cm":
        with contextlib.suppress(ValueError):
            shown += f" ({float(number) * 10:g} mm)"
    return f"diameter {shown} is outside 0-{MAX_DIAMETER_MM:g} mm"


def _required_column_problem(row: ProfileRow) -> str:
    return "required file is missing" if row.detail == "file" else "required column is missing"


EXPORT_CHECKS: tuple[Check, ...] = (
    Check(
        id="required_columns",
        severity="blocking",
        description="Every required SDTM column of SPEC §1 is present in its export file "
        "(the loader already stops on a missing one; recorded here).",
        kind="in_set",
        allowed=("present",),
        collect=_required_columns,
        problem=_required_column_problem,
        noun=None,
    ),
    Check(
        id="dm_one_row_per_subject",
        severity="blocking",
        description="DM has one row per USUBJID (SPEC rule 6).",
        kind="zero",
        collect=_dm_unique_subject,
        problem=_template("subject {value!r} appears more than once in DM"),
        noun="extra row",
    ),
    Check(
        id="subject_in_dm",
        severity="blocking",
        description="Every USUBJID of EX, TU, TR, DS, QS and SC has a DM row (SPEC rule 6).",
        kind="zero",
        collect=_subject_in_dm,
        problem=_template("subject {value!r} is not in DM"),
    ),
    Check(
        id="required_values",
        severity="warning",
        description="Required values are not blank (TRDTC may be, when VISITNUM or VISIT "
        "keys the assessment); staging rejects such rows as missing_value.",
        kind="zero",
        collect=_required_values,
        problem=_template("required value is blank"),
    ),
    Check(
        id="lesion_class_terms",
        severity="warning",
        description="TUORRES and TUSTRESC are TARGET, NON-TARGET or NEW (any case).",
        kind="in_set",
        allowed=LESION_CLASSES,
        collect=_lesion_classes,
        problem=_template("lesion class {value!r} is not TARGET, NON-TARGET or NEW"),
    ),
    Check(
        id="test_code_terms",
        severity="warning",
        description="TRTESTCD is one of " + ", ".join(TEST_CODES) + " (any case).",
        kind="in_set",
        allowed=TEST_CODES,
        collect=_test_codes,
        problem=_template("test code {value!r} is not one of " + ", ".join(TEST_CODES)),
    ),
    Check(
        id="unit_terms",
        severity="warning",
        description="The unit of a length result (LDIAM, LPERP, DIAMETER, SUMDIAM) is mm, cm "
        "or blank, any case: TRSTRESU where TRSTRESN is given, TRORRESU where the original "
        "result is the number used; staging rejects other units as invalid_unit.",
        kind="in_set",
        allowed=UNITS,
        collect=_units,
        problem=_template("unit {value!r} is not mm, cm or blank"),
    ),
    Check(
        id="evaluator_terms",
        severity="warning",
        description="TREVAL and TUEVAL are INVESTIGATOR, INDEPENDENT ASSESSOR or blank.",
        kind="in_set",
        allowed=EVALUATORS,
        collect=_evaluators,
        problem=_template("evaluator {value!r} is not INVESTIGATOR, INDEPENDENT ASSESSOR or blank"),
    ),
    Check(
        id="date_format",
        severity="warning",
        description="Dates are ISO 8601: YYYY-MM-DD (a time after it is dropped), YYYY-MM or "
        "YYYY; staging rejects an unreadable date as invalid_date.",
        kind="in_set",
        allowed=DATE_FORMATS,
        collect=_date_formats,
        problem=_template(
            "date {value!r} is not an ISO 8601 date (YYYY-MM-DD[Thh:mm], YYYY-MM or YYYY)"
        ),
    ),
    Check(
        id="date_range",
        severity="warning",
        description="Dates are plausible: not before 1900-01-01 and not after today.",
        kind="zero",
        collect=_date_range,
        problem=_date_problem,
    ),
    Check(
        id="scan_after_death",
        severity="warning",
        description="No tumor scan (TRDTC) is dated after the subject's death (DM.DTHDTC, "
        "else a DS DEATH row; a partial date of death counts to the end of its month or "
        "year).",
        kind="zero",
        collect=_scan_after_death,
        problem=_template("scan date {value!r} is after the death of {detail}"),
    ),
    Check(
        id="diameter_range",
        severity="warning",
        description="Lesion diameters (LDIAM, LPERP, DIAMETER in mm, cm x 10) are within "
        f"0-{MAX_DIAMETER_MM:g} mm: the profile holds their minimum and maximum.",
        kind="between",
        min_value=0.0,
        max_value=MAX_DIAMETER_MM,
        collect=_diameters,
        problem=_diameter_problem,
    ),
    Check(
        id="lesion_in_tu",
        severity="warning",
        description="Every TR lesion (TRLNKID) is identified in TU for the same subject and "
        "reader (SPEC rule 5); staging rejects others as unknown_lesion.",
        kind="zero",
        collect=_lesions_in_tu,
        problem=_template("lesion {value!r} of {detail} is not identified in TU"),
    ),
    Check(
        id="measured_once",
        severity="warning",
        description="A lesion is measured once per assessment, test and reader (SPEC rule 6); "
        "staging keeps the latest-dated row and rejects the others as duplicate.",
        kind="zero",
        collect=_measured_once,
        problem=_template("lesion {value!r} of {detail}"),
    ),
)


# ---------------------------------------------------------------------------
# Marts (schema `analytics`, after the build)

_TK = "analytics.tumor_kinetics"
_CLOSE = "abs(({a}) - ({b})) <= {tol} * greatest(abs({a}), abs({b}))"


def _close(a: str, b: str) -> str:
    return _CLOSE.format(a=a, b=b, tol=RELATIVE_TOLERANCE)


def _mart_offending(
    table: str,
    where: str,
    column: str,
    value: str,
    detail: str = "null",
    key: str = "'usubjid ''' || usubjid || ''''",
    order: str = "usubjid",
) -> str:
    return f"""
        select '{table}' as f, {order} as o, null::bigint as r, {key} as k, '{column}' as c,
            cast({value} as varchar) as v, cast({detail} as varchar) as d
        from {table}
        where {where}
    """


def _kinetics_grain(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    return [
        _summary(
            con,
            f"""
            select '{_TK}' as f, coalesce(usubjid, '') as o, null::bigint as r,
                'usubjid ' || coalesce('''' || usubjid || '''', 'null') as k, 'usubjid' as c,
                cast(n as varchar) as v, null as d,
                case when usubjid is null then n else n - 1 end as w
            from (select usubjid, count(*) as n from {_TK} group by usubjid)
            where usubjid is null or n > 1
            """,
            weighted=True,
        )
    ]


def _kinetics_cover_treated(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    marts = ("tumor_kinetics", "survival", "hyperprogression")
    present = ", ".join(
        f"coalesce(usubjid in (select usubjid from analytics.{mart}), false) as in_{mart}"
        for mart in marts
    )
    missing = " || ".join(
        f"case when not in_{mart} then ', analytics.{mart}' else '' end" for mart in marts
    )
    listed = " || ".join(
        f"case when in_{mart} then ', analytics.{mart}' else '' end" for mart in marts
    )
    return [
        _summary(
            con,
            f"""
            with subjects as (
                select distinct usubjid from (
                    {" union all ".join(f"select usubjid from analytics.{m}" for m in marts)}
                )
                where usubjid is not null
            ),
            compared as (select usubjid, {present} from subjects)
            select '{_TK}' as f, usubjid as o, null::bigint as r,
                'usubjid ''' || usubjid || '''' as k, 'usubjid' as c, null as v,
                'is missing from ' || substr({missing}, 3)
                    || ' (present in ' || substr({listed}, 3) || ')' as d
            from compared
            where not ({" and ".join(f"in_{mart}" for mart in marts)})
            """,
        )
    ]


def _assessments_grain(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    table = "analytics.tumor_assessments"
    return [
        _summary(
            con,
            f"""
            with numbered as (
                select usubjid, assessment_order,
                    row_number() over (partition by usubjid order by assessment_order) as expected
                from {table}
            )
            select '{table}' as f, coalesce(usubjid, '') || lpad(cast(expected as varchar), 12, '0')
                    as o, null::bigint as r,
                'usubjid ' || coalesce('''' || usubjid || '''', 'null') as k,
                'assessment_order' as c, cast(assessment_order as varchar) as v,
                'expected ' || expected as d
            from numbered
            where usubjid is null or assessment_order is distinct from expected
            """,
        )
    ]


def _assessments_natural_key(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    table = "analytics.tumor_assessments"
    return [
        _summary(
            con,
            f"""
            select '{table}' as f, usubjid || cast(assessment_date as varchar) as o,
                null::bigint as r, 'usubjid ''' || usubjid || '''' as k,
                'assessment_date' as c, cast(assessment_date as varchar) as v,
                'visitnum ' || coalesce(cast(visitnum as varchar), 'null')
                    || ', visit ' || coalesce(visit, 'null') as d,
                n - 1 as w
            from (
                select usubjid, visitnum, visit, assessment_date, count(*) as n
                from {table} group by all
            )
            where n > 1
            """,
            weighted=True,
        )
    ]


def _assessment_roles(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    table = "analytics.tumor_assessments"
    return [
        _summary(
            con,
            f"""
            select '{table}' as f, usubjid || role as o, null::bigint as r,
                'usubjid ''' || usubjid || '''' as k, 'role' as c, role as v, null as d,
                n - 1 as w
            from (
                select usubjid, role, count(*) as n from {table}
                where role in ('pre_baseline', 'baseline', 'first_evaluation')
                group by all
            )
            where n > 1
            """,
            weighted=True,
        )
    ]


def _classification_grain(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    table = "analytics.hpd_classification"
    return [
        _summary(
            con,
            f"""
            with definitions as (select distinct definition_id from analytics.hpd_definitions),
            expected as (
                select kinetics.usubjid, definitions.definition_id
                from (select distinct usubjid from {_TK}) as kinetics, definitions
            ),
            actual as (
                select usubjid, definition_id, count(*) as n from {table} group by all
            ),
            compared as (
                select coalesce(expected.usubjid, actual.usubjid) as usubjid,
                    coalesce(expected.definition_id, actual.definition_id) as definition_id,
                    coalesce(actual.n, 0) as n, expected.usubjid is not null as is_expected
                from expected full join actual
                    on expected.usubjid = actual.usubjid
                    and expected.definition_id = actual.definition_id
            ),
            per_subject as (
                select usubjid,
                    sum(n) as n,
                    count(*) filter (where is_expected) as expected_rows,
                    string_agg(definition_id, ', ' order by definition_id)
                        filter (where n <> case when is_expected then 1 else 0 end) as wrong
                from compared group by usubjid
            )
            select '{table}' as f, coalesce(usubjid, '') as o, null::bigint as r,
                'usubjid ' || coalesce('''' || usubjid || '''', 'null') as k,
                'definition_id' as c, cast(n as varchar) as v,
                'expected ' || expected_rows || ' (one per definition); wrong: ' || wrong as d
            from per_subject
            where wrong is not null
            """,
        )
    ]


def _attrition_total(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    table = "analytics.cohort_attrition"
    return [
        _summary(
            con,
            f"""
            with totals as (
                select (select count(*) from {_TK}) as treated,
                    (select sum(n) from {table}) as total,
                    (select arg_min(n_remaining, step) from {table}) as first_remaining
            )
            select '{table}' as f, 1 as o, null::bigint as r, null as k, 'n' as c,
                cast(total as varchar) as v,
                'n sums to ' || coalesce(cast(total as varchar), 'null')
                    || ' and the first n_remaining is '
                    || coalesce(cast(first_remaining as varchar), 'null')
                    || ', but {_TK} has ' || treated || ' rows' as d
            from totals
            where total is distinct from treated or first_remaining is distinct from treated
            """,
        )
    ]


def _attrition_steps(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    table = "analytics.cohort_attrition"
    statuses = " union all ".join(
        f"select {step} as step, '{status}' as status"
        for step, status in enumerate(EVALUABILITY, start=1)
    )
    return [
        _summary(
            con,
            f"""
            with expected as (
                select statuses.step, statuses.status, count(kinetics.usubjid) as n
                from ({statuses}) as statuses
                left join {_TK} as kinetics on kinetics.evaluability = statuses.status
                group by all
            ),
            expected_remaining as (
                select *, sum(n) over (order by step rows between current row
                    and unbounded following) as n_remaining
                from expected
            )
            select '{table}' as f, coalesce(e.step, a.step) as o, null::bigint as r,
                'step ' || coalesce(e.step, a.step) as k, 'n' as c,
                coalesce(a.status, 'no row') || ': n ' || coalesce(cast(a.n as varchar), 'null')
                    || ', n_remaining ' || coalesce(cast(a.n_remaining as varchar), 'null') as v,
                coalesce(e.status, 'no status') || ': n ' || coalesce(cast(e.n as varchar), '-')
                    || ', n_remaining ' || coalesce(cast(e.n_remaining as varchar), '-') as d
            from expected_remaining as e
            full join {table} as a on e.step = a.step
            where a.status is distinct from e.status or a.n is distinct from e.n
                or a.n_remaining is distinct from e.n_remaining
            """,
        )
    ]


def _evaluability_values(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    rows = con.execute(
        f"""
        select min(usubjid), count(*), coalesce(evaluability, '(null)') as status
        from {_TK} group by status order by status
        """
    ).fetchall()
    return [
        ProfileRow(
            file=_TK,
            row=None,
            key=f"usubjid {first!r}",
            column="evaluability",
            value=str(status),
            detail=None,
            rows=int(count),
            measure=str(status),
        )
        for first, count, status in rows
    ]


def _kinetics_for_evaluable(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    return [
        _summary(
            con,
            _mart_offending(
                _TK,
                """
                (tgkr is not null and evaluability is distinct from 'evaluable')
                or (evaluability = 'evaluable'
                    and (tgk_pre is null or tgk_post is null or (tgkr is null and tgk_pre <> 0)))
                """,
                "tgkr",
                "tgkr",
                "'evaluability ' || coalesce(evaluability, 'null') || ', tgk_pre '"
                " || coalesce(cast(tgk_pre as varchar), 'null') || ', tgk_post '"
                " || coalesce(cast(tgk_post as varchar), 'null')",
            ),
        )
    ]


def _hpd_for_evaluable(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    return [
        _summary(
            con,
            _mart_offending(
                _TK,
                "(hpd is null) is distinct from (evaluability is distinct from 'evaluable')",
                "hpd",
                "coalesce(cast(hpd as varchar), 'null')",
                "'evaluability ' || coalesce(evaluability, 'null')",
            ),
        )
    ]


def _ratio_consistent(ratio: str, numerator: str, denominator: str) -> Collector:
    def collect(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
        defined = f"{numerator} is not null and {denominator} is not null and {denominator} <> 0"
        close = _close(ratio, f"{numerator} / {denominator}")
        return [
            _summary(
                con,
                _mart_offending(
                    _TK,
                    f"""
                    case when {defined}
                        then {ratio} is null or not ({close})
                        else {ratio} is not null end
                    """,
                    ratio,
                    f"coalesce(cast({ratio} as varchar), 'null')",
                    f"case when {defined} then cast({numerator} / {denominator} as varchar) end",
                ),
            )
        ]

    return collect


def _delta_tgr_consistent(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    defined = "tgr_pre is not null and tgr_post is not null"
    tolerance = f"{RELATIVE_TOLERANCE} * greatest(abs(tgr_post), abs(tgr_pre), abs(delta_tgr))"
    return [
        _summary(
            con,
            _mart_offending(
                _TK,
                f"""
                case when {defined}
                    then delta_tgr is null
                        or not (abs(delta_tgr - (tgr_post - tgr_pre)) <= {tolerance})
                    else delta_tgr is not null end
                """,
                "delta_tgr",
                "coalesce(cast(delta_tgr as varchar), 'null')",
                f"case when {defined} then cast(tgr_post - tgr_pre as varchar) end",
            ),
        )
    ]


def _hpd_consistent(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    columns = _tables(con, "analytics").get("hyperprogression", set())
    pivoted = (
        " union all ".join(
            f"select usubjid, '{column[4:]}' as definition_id, {column} as is_hpd"
            f" from analytics.hyperprogression"
            for column in sorted(columns)
            if column.startswith("hpd_")
        )
        or "select null::varchar as usubjid, null::varchar as definition_id,"
        " null::boolean as is_hpd"
    )
    return [
        _summary(
            con,
            f"""
            with classification as (
                select usubjid, definition_id, is_hpd from analytics.hpd_classification
            ),
            compared as (
                select 'analytics.hyperprogression' as f, p.usubjid,
                    'hpd_' || p.definition_id as c, p.is_hpd as shown, cl.is_hpd as judged
                from ({pivoted}) as p
                left join classification as cl
                    on p.usubjid = cl.usubjid and p.definition_id = cl.definition_id
                union all
                select '{_TK}', tk.usubjid, 'hpd', tk.hpd, cl.is_hpd
                from {_TK} as tk
                left join classification as cl
                    on tk.usubjid = cl.usubjid and cl.definition_id = 'tgkr'
            )
            select f, f || usubjid || c as o, null::bigint as r,
                'usubjid ''' || usubjid || '''' as k, c,
                coalesce(cast(shown as varchar), 'null') as v,
                coalesce(cast(judged as varchar), 'null') as d
            from compared
            where shown is distinct from judged
            """,
        )
    ]


def _input_reconciliation(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    table = "analytics.input_reconciliation"
    raw = _tables(con, "raw")
    profile = []
    for spec in sdtm_domains():
        raw_count = f"(select count(*) from raw.{spec.name})" if spec.name in raw else "null"
        profile.append(
            _summary(
                con,
                f"""
                with recon as (
                    select max(rows_read) as rows_read, max(rows_used) as rows_used,
                        max(rows_rejected) as rows_rejected, count(*) as n
                    from {table} where domain = '{spec.name}'
                ),
                counted as (
                    select *,
                        (select count(*) from analytics.rejected_rows
                            where domain = '{spec.name}') as rejected_listed,
                        {raw_count} as raw_rows
                    from recon
                )
                select '{table}' as f, 1 as o, null::bigint as r,
                    'domain {spec.name}' as k, 'rows_read' as c,
                    coalesce(cast(rows_read as varchar), 'null') as v,
                    coalesce(cast(rows_used as varchar), 'null') || ' used + '
                        || coalesce(cast(rows_rejected as varchar), 'null')
                        || ' rejected; analytics.rejected_rows lists ' || rejected_listed
                        || coalesce('; raw.{spec.name} has ' || raw_rows || ' rows', '')
                        || case when n <> 1 then '; ' || n || ' reconciliation rows' else '' end
                        as d
                from counted
                where n <> 1
                    or rows_read is distinct from rows_used + rows_rejected
                    or rows_rejected is distinct from rejected_listed
                    or (raw_rows is not null and rows_read is distinct from raw_rows)
                """,
            )
        )
    return profile


def _rejections_located(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    table = "analytics.rejected_rows"
    return [
        _summary(
            con,
            f"""
            select '{table}' as f, coalesce(domain, '') || lpad(coalesce(
                    cast(row_number as varchar), ''), 12, '0') as o, null::bigint as r,
                'domain ' || coalesce(domain, 'null') || ', file '
                    || coalesce(file_name, 'null') || ', row '
                    || coalesce(cast(row_number as varchar), 'null') as k,
                case when reason is null then 'reason'
                    when file_name is null then 'file_name'
                    when row_number is null then 'row_number' else 'row_number' end as c,
                coalesce(reason, 'null') as v,
                case when n > 1 then 'rejected ' || n || ' times'
                    else 'not located or without reason' end as d,
                case when reason is null or file_name is null or row_number is null
                    then n else n - 1 end as w
            from (
                select domain, file_name, row_number, min(reason) as reason, count(*) as n
                from {table} group by domain, file_name, row_number
            )
            where n > 1 or reason is null or file_name is null or row_number is null
            """,
            weighted=True,
        )
    ]


def _evaluable_count(con: duckdb.DuckDBPyConnection) -> list[ProfileRow]:
    row = con.execute(
        f"select count(*) filter (where evaluability = 'evaluable'), count(*) from {_TK}"
    ).fetchone()
    assert row is not None
    return [
        ProfileRow(
            file=_TK,
            row=None,
            key=None,
            column="evaluability",
            value=str(row[0]),
            detail=f"{row[1]} treated subjects",
            rows=int(row[0]),
            measure=float(row[0]),
        )
    ]


MART_CHECKS: tuple[Check, ...] = (
    Check(
        id="tumor_kinetics_one_row_per_subject",
        severity="blocking",
        description="analytics.tumor_kinetics has one row per usubjid, never a null one.",
        kind="zero",
        collect=_kinetics_grain,
        problem=_template("subject has {value} rows"),
        noun="extra row",
    ),
    Check(
        id="tumor_kinetics_covers_treated",
        severity="blocking",
        description="analytics.tumor_kinetics, analytics.survival and analytics.hyperprogression "
        "hold the same treated subjects.",
        kind="zero",
        collect=_kinetics_cover_treated,
        problem=_template("treated subject {detail}"),
        noun="subject",
    ),
    Check(
        id="tumor_assessments_grain",
        severity="blocking",
        description="analytics.tumor_assessments has one row per subject and assessment: "
        "assessment_order numbers each subject's assessments 1, 2, 3... once each.",
        kind="zero",
        collect=_assessments_grain,
        problem=_template("assessment_order {value} where {detail}"),
    ),
    Check(
        id="tumor_assessments_natural_key",
        severity="warning",
        description="analytics.tumor_assessments is unique per usubjid, visitnum, visit and "
        "assessment_date (a warning: two date-keyed assessments, one imputed, may share them).",
        kind="zero",
        collect=_assessments_natural_key,
        problem=_template("two assessments on {value} ({detail})"),
        noun="extra row",
    ),
    Check(
        id="tumor_assessments_key_roles",
        severity="blocking",
        description="A subject has at most one pre-baseline, one baseline and one first "
        "evaluation.",
        kind="zero",
        collect=_assessment_roles,
        problem=_template("role {value} is given to more than one assessment"),
        noun="extra row",
    ),
    Check(
        id="hpd_classification_grain",
        severity="blocking",
        description="analytics.hpd_classification has exactly one row per treated subject and "
        "definition of analytics.hpd_definitions (7 per subject).",
        kind="zero",
        collect=_classification_grain,
        problem=_template("{value} rows, {detail}"),
        noun="subject",
    ),
    Check(
        id="attrition_total",
        severity="blocking",
        description="analytics.cohort_attrition: n sums to the rows of analytics.tumor_kinetics "
        "and the first n_remaining equals it.",
        kind="zero",
        collect=_attrition_total,
        problem=lambda row: row.detail or "",
        noun=None,
    ),
    Check(
        id="attrition_steps",
        severity="blocking",
        description="analytics.cohort_attrition lists the five statuses in order, each n the "
        "subjects of analytics.tumor_kinetics with that status, n_remaining those still in.",
        kind="zero",
        collect=_attrition_steps,
        problem=_template("{value}, expected {detail}"),
        noun="step",
    ),
    Check(
        id="evaluability_terms",
        severity="blocking",
        description="analytics.tumor_kinetics.evaluability is one of "
        + ", ".join(EVALUABILITY)
        + ".",
        kind="in_set",
        allowed=EVALUABILITY,
        collect=_evaluability_values,
        problem=_template("evaluability {value!r} is not a status of SPEC §2"),
    ),
    Check(
        id="kinetics_exactly_for_evaluable",
        severity="blocking",
        description="TGKR is given only for evaluable subjects; an evaluable subject has "
        "TGK_pre and TGK_post, and a TGKR unless TGK_pre is 0.",
        kind="zero",
        collect=_kinetics_for_evaluable,
        problem=_template("tgkr {value} does not fit {detail}"),
    ),
    Check(
        id="hpd_null_exactly_when_not_evaluable",
        severity="blocking",
        description="The primary verdict (tumor_kinetics.hpd) is null exactly for the subjects "
        "that are not evaluable.",
        kind="zero",
        collect=_hpd_for_evaluable,
        problem=_template("hpd is {value} with {detail}"),
    ),
    Check(
        id="tgkr_consistent",
        severity="blocking",
        description="tgkr = tgk_post / tgk_pre (relative tolerance 1e-9) where TGK_pre is "
        "non-zero, null elsewhere.",
        kind="zero",
        collect=_ratio_consistent("tgkr", "tgk_post", "tgk_pre"),
        problem=_template("tgkr {value} is not tgk_post / tgk_pre = {detail}"),
    ),
    Check(
        id="tgr_ratio_consistent",
        severity="blocking",
        description="tgr_ratio = tgr_post / tgr_pre (relative tolerance 1e-9) where TGR_pre is "
        "non-zero, null elsewhere.",
        kind="zero",
        collect=_ratio_consistent("tgr_ratio", "tgr_post", "tgr_pre"),
        problem=_template("tgr_ratio {value} is not tgr_post / tgr_pre = {detail}"),
    ),
    Check(
        id="delta_tgr_consistent",
        severity="blocking",
        description="delta_tgr = tgr_post - tgr_pre (relative tolerance 1e-9) where both are "
        "defined, null elsewhere.",
        kind="zero",
        collect=_delta_tgr_consistent,
        problem=_template("delta_tgr {value} is not tgr_post - tgr_pre = {detail}"),
    ),
    Check(
        id="hpd_consistent",
        severity="blocking",
        description="The verdicts of analytics.tumor_kinetics (hpd) and "
        "analytics.hyperprogression (hpd_<definition>) are those of "
        "analytics.hpd_classification.",
        kind="zero",
        collect=_hpd_consistent,
        problem=_template("{value}, but analytics.hpd_classification says {detail}"),
        noun="verdict",
    ),
    Check(
        id="input_reconciliation",
        severity="blocking",
        description="Per domain, rows read = rows used + rows rejected, the rejected rows are "
        "those of analytics.rejected_rows, and rows read are the rows loaded into raw.",
        kind="zero",
        collect=_input_reconciliation,
        problem=lambda row: f"{row.value} rows read, {row.detail}",
        noun=None,
    ),
    Check(
        id="rejected_rows_located",
        severity="blocking",
        description="Every rejected row names its file, row number and reason, once "
        "(SPEC rule 17).",
        kind="zero",
        collect=_rejections_located,
        problem=_template("rejected row ({value}) is {detail}"),
    ),
    Check(
        id="evaluable_subjects",
        severity="warning",
        description="At least one treated subject is evaluable (otherwise no kinetics and "
        "no hyperprogression verdict can be given).",
        kind="between",
        min_value=1.0,
        collect=_evaluable_count,
        problem=lambda row: f"no subject is evaluable ({row.detail})",
        noun=None,
    ),
)

SUITES: dict[str, tuple[Check, ...]] = {EXPORTS_SUITE: EXPORT_CHECKS, MARTS_SUITE: MART_CHECKS}


# ---------------------------------------------------------------------------
# The GX context


def _gx() -> Any:
    """Great Expectations, imported on first use with its usage statistics off."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations

    return great_expectations


def _expectation_signature(expectation: Expectation) -> str:
    data = expectation.dict(exclude={"id", "rendered_content"})
    return json.dumps(data, sort_keys=True, default=str)


def _suite_matches(suite: Any, checks: Sequence[Check]) -> bool:
    stored = sorted(_expectation_signature(e) for e in suite.expectations)
    declared = sorted(_expectation_signature(check.expectation()) for check in checks)
    return stored == declared


def get_context(project_root: Path = PROJECT_DIR) -> FileDataContext:
    """The file-backed GX context of `project_root / "gx"`, with the project's
    datasource, suites, validation definitions and checkpoints in place.

    Only what is missing or differs from the declarations in this module is
    written, so a context in step with the code is only read.
    """
    gx = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.datasource.fluent.pandas_datasource import PandasDatasource

    context: FileDataContext = gx.get_context(mode="file", project_root_dir=str(project_root))
    variables = context.variables
    progress = variables.progress_bars
    shown = (
        progress.get("globally", True)
        if isinstance(progress, dict)
        else getattr(progress, "globally", True)
    )
    if variables.analytics_enabled is not False or shown is not False:
        variables.analytics_enabled = False
        variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        variables.save()

    existing = context.data_sources.all().get(DATASOURCE)
    rebuilt = not isinstance(existing, PandasDatasource)
    if isinstance(existing, PandasDatasource):
        datasource = existing
    else:
        if existing is not None:
            context.data_sources.delete(DATASOURCE)
        datasource = context.data_sources.add_pandas(DATASOURCE)
    for suite_name, checks in SUITES.items():
        asset_names = {asset.name for asset in datasource.assets}
        asset_rebuilt = rebuilt or suite_name not in asset_names
        asset = (
            datasource.add_dataframe_asset(suite_name)
            if suite_name not in asset_names
            else datasource.get_asset(suite_name)
        )
        if BATCH_DEFINITION not in {batch.name for batch in asset.batch_definitions}:
            asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)
            asset_rebuilt = True
        batch_definition = asset.get_batch_definition(BATCH_DEFINITION)

        suite_names = {suite.name for suite in context.suites.all()}
        if suite_name not in suite_names:
            suite = context.suites.add(gx.ExpectationSuite(name=suite_name))
            asset_rebuilt = True
        else:
            suite = context.suites.get(suite_name)
        if not _suite_matches(suite, checks):
            for expectation in list(suite.expectations):
                suite.delete_expectation(expectation)
            for check in checks:
                suite.add_expectation(check.expectation())
            suite.meta = {"notes": f"hpd data-quality gate, suite {suite_name} (SPEC §8)"}
            suite.save()
            suite = context.suites.get(suite_name)  # as stored (save adds to its meta)

        definitions = {vd.name: vd for vd in context.validation_definitions.all()}
        checkpoints = {cp.name: cp for cp in context.checkpoints.all()}
        stale = suite_name in definitions and not definitions[suite_name].is_fresh().success
        if asset_rebuilt or stale or suite_name not in definitions:
            if suite_name in checkpoints:
                context.checkpoints.delete(suite_name)
                del checkpoints[suite_name]
            if suite_name in definitions:
                context.validation_definitions.delete(suite_name)
            definitions[suite_name] = context.validation_definitions.add(
                gx.ValidationDefinition(name=suite_name, data=batch_definition, suite=suite)
            )
        if suite_name not in checkpoints:
            context.checkpoints.add(
                gx.Checkpoint(
                    name=suite_name,
                    validation_definitions=[definitions[suite_name]],
                    actions=[],
                    result_format={"result_format": "COMPLETE"},
                )
            )
    return context


# ---------------------------------------------------------------------------
# Running a suite


def _collect(con: duckdb.DuckDBPyConnection, check: Check) -> list[ProfileRow]:
    """The check's profile; a check whose SQL fails (a mart or column missing)
    yields one row its expectation rejects, carrying the error."""
    try:
        return check.collect(con)
    except duckdb.Error as error:
        lines = str(error).strip().splitlines()
        failing: str | float = "(check failed)"
        if check.kind == "zero":
            failing = 1.0
        elif check.kind == "between":
            failing = (check.min_value - 1) if check.min_value is not None else float("inf")
        return [
            ProfileRow(
                file=None,
                row=None,
                key=None,
                column=None,
                value=None,
                detail=None,
                rows=0,
                measure=failing,
                error=lines[0] if lines else type(error).__name__,
            )
        ]


def profile_frame(con: duckdb.DuckDBPyConnection, checks: Sequence[Check]) -> pd.DataFrame:
    """Run every check's SQL and stack the profiles into one small frame."""
    records: list[dict[str, Any]] = []
    for check in checks:
        for row in _collect(con, check):
            record: dict[str, Any] = {
                "check": check.id,
                "file": row.file,
                "row": row.row,
                "key": row.key,
                "column": row.column,
                "value": row.value,
                "detail": row.detail,
                "rows": row.rows,
                "error": row.error,
            }
            record[check.id] = row.measure
            records.append(record)
    base = ["check", "file", "row", "key", "column", "value", "detail", "rows", "error"]
    frame = pd.DataFrame.from_records(records, columns=base + [check.id for check in checks])
    for name in base:
        frame[name] = frame[name].astype(object)
    for check in checks:
        if check.kind == "in_set":
            frame[check.id] = frame[check.id].astype(object)
            frame.loc[frame[check.id].isna(), check.id] = None
        else:
            frame[check.id] = pd.to_numeric(frame[check.id], errors="coerce").astype(float)
    return frame


def _file_rank(name: object) -> int:
    stems = [spec.name for spec in sdtm_domains()]
    stem = str(name).split(".")[0].lower() if name is not None else ""
    return stems.index(stem) if stem in stems else len(stems)


def _where(row: ProfileRow) -> str:
    if row.key is not None:
        parts = [row.file or "", row.key]
        if row.column:
            parts.append(f"column {row.column}")
        return ", ".join(parts)
    return location(row.file or "", row.row, row.column)


def _message(check: Check, rows: list[ProfileRow]) -> str:
    ordered = sorted(
        rows, key=lambda r: (_file_rank(r.file), r.file or "", r.row or 0, r.key or "")
    )
    first = ordered[0]
    if first.error is not None:
        return f"check {check.id} could not run: {first.error}"
    text = f"{_where(first)}: {check.problem(first)}"
    if check.noun is not None:
        total = sum(row.rows for row in ordered)
        others = sorted(
            {
                f"{row.file} column {row.column}" if row.column else str(row.file)
                for row in ordered[1:]
                if (row.file, row.column) != (first.file, first.column)
            }
        )
        also = f"; also {', '.join(others)}" if others else ""
        text += f" ({_count(total, check.noun)}{also})"
    return text


def _profile_row(record: pd.Series) -> ProfileRow:
    def get(name: str) -> Any:
        value = record[name]
        return None if value is None or (isinstance(value, float) and pd.isna(value)) else value

    row = get("row")
    return ProfileRow(
        file=get("file"),
        row=int(row) if row is not None else None,
        key=get("key"),
        column=get("column"),
        value=get("value"),
        detail=get("detail"),
        rows=int(get("rows") or 0),
        measure=get(str(record["check"])),
        error=get("error"),
    )


def _issues(
    checks: Sequence[Check], frame: pd.DataFrame, validation: ExpectationSuiteValidationResult
) -> list[Issue]:
    by_id = {check.id: check for check in checks}
    issues = []
    for outcome in validation.results:
        config = outcome.expectation_config
        if outcome.success or config is None:
            continue
        check = by_id[str((config.meta or {}).get("check"))]
        raised = (outcome.exception_info or {}).get("raised_exception")
        indices = (outcome.result or {}).get("unexpected_index_list") or []
        rows = [_profile_row(frame.loc[index]) for index in indices if index in frame.index]
        if rows:
            message = _message(check, rows)
        else:
            reason = (outcome.exception_info or {}).get("exception_message") if raised else None
            message = f"check {check.id} failed" + (f": {reason}" if reason else "")
        issues.append(Issue(check=check.id, severity=check.severity, message=message))
    order = {check.id: index for index, check in enumerate(checks)}
    return sorted(issues, key=lambda issue: order[issue.check])


def _validate(con: duckdb.DuckDBPyConnection, suite_name: str, project_root: Path) -> QualityResult:
    started = time.monotonic()
    checks = SUITES[suite_name]
    frame = profile_frame(con, checks)
    context = get_context(project_root)
    checkpoint = context.checkpoints.get(suite_name)
    outcome = checkpoint.run(batch_parameters={"dataframe": frame})
    validations = list(outcome.run_results.values())
    issues = [issue for validation in validations for issue in _issues(checks, frame, validation)]
    return QualityResult(
        suite=suite_name,
        evaluated=sum(len(validation.results) for validation in validations),
        blocking_failures=[i.message for i in issues if i.severity == "blocking"],
        warnings=[i.message for i in issues if i.severity == "warning"],
        issues=issues,
        validation_results=validations,
        profile=frame,
        seconds=time.monotonic() - started,
    )


def validate_exports(
    con: duckdb.DuckDBPyConnection, project_root: Path = PROJECT_DIR
) -> QualityResult:
    """Suite `exports`, on the `raw` schema the loader filled (before the build)."""
    return _validate(con, EXPORTS_SUITE, project_root)


def validate_marts(
    con: duckdb.DuckDBPyConnection | Warehouse,
    project_root: Path = PROJECT_DIR,
    raw: duckdb.DuckDBPyConnection | None = None,
) -> QualityResult:
    """Suite `marts`, on schema `analytics` (after the build).

    The checks' SQL is DuckDB's. A PostgreSQL or Spark warehouse's marts are
    copied (`COPY ... TO STDOUT`, or Arrow; types kept) into a DuckDB
    database first and checked there: into `raw`, the DuckDB database the
    exports were loaded and checked in (it holds the same `raw` tables the
    server received), or into an in-memory one for the demo cohort."""
    if isinstance(con, duckdb.DuckDBPyConnection):
        return _validate(con, MARTS_SUITE, project_root)
    if isinstance(con, DuckDBWarehouse):
        return _validate(con.con, MARTS_SUITE, project_root)
    if not isinstance(con, PostgresWarehouse | SparkWarehouse):
        raise TypeError(f"cannot check the marts of {type(con).__name__}")
    with contextlib.ExitStack() as stack:
        mirror = raw if raw is not None else stack.enter_context(duckdb.connect())
        mirror.execute("drop schema if exists analytics cascade")
        con.copy_to_duckdb(mirror, "analytics")
        return _validate(mirror, MARTS_SUITE, project_root)


# ---------------------------------------------------------------------------
# Data Docs


def build_data_docs(results: Sequence[QualityResult], reports_dir: Path) -> Path:
    """Write the GX Data Docs of `results` into `reports_dir / "data_docs"`.

    The site is built by an in-memory GX context that holds the suites and
    exactly these validation results, so it shows this refresh and nothing
    else; its local site's base directory is the reports folder (static HTML
    with relative links: open `index.html` from disk). Returns its path.
    """
    gx = _gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    target = (reports_dir / "data_docs").resolve()
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    site = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(target),
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            data_docs_sites={DATA_DOCS_SITE: site},
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        ),
    )
    for suite_name in dict.fromkeys(result.suite for result in results):
        suite = gx.ExpectationSuite(name=suite_name)
        for check in SUITES[suite_name]:
            suite.add_expectation(check.expectation())
        context.suites.add(suite)
    store = context.validation_results_store
    pages: list[tuple[QualityResult, str]] = []
    for result in results:
        messages = {issue.check: issue for issue in result.issues}
        for original in result.validation_results:
            # A failed expectation shows its one-line message after its description.
            validation = copy.deepcopy(original)
            for outcome in validation.results:
                config = outcome.expectation_config
                if outcome.success or config is None:
                    continue
                issue = messages.get(str((config.meta or {}).get("check")))
                if issue is not None:
                    label = "BLOCKING" if issue.severity == "blocking" else "WARNING"
                    text = f"{config.description} {label}: {issue.message}"
                    config.description = text.replace("$", "$$")
            batch = validation.meta.get("active_batch_definition") or {}
            asset = batch.get("data_asset_name", result.suite) if isinstance(batch, dict) else None
            batch_id = f"{DATASOURCE}-{asset or result.suite}"
            spec = validation.meta.get("batch_spec")
            if isinstance(spec, dict):  # shown as the page's "Data asset"
                spec["data_asset_name"] = f"{DATASOURCE}.{asset or result.suite} (profile frame)"
            key = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=result.suite),
                run_id=validation.meta["run_id"],
                batch_identifier=batch_id,
            )
            store.set(key, validation)
            parts: tuple[str, ...] = key.to_tuple()  # type: ignore[no-untyped-call]
            pages.append((result, "validations/" + "/".join(parts) + ".html"))
    context.build_data_docs(site_names=[DATA_DOCS_SITE])
    index = target / "index.html"
    if not index.is_file():
        raise DataError(f"{index}: the Data Docs were not written")
    _add_summary(index, pages)
    return index


def _add_summary(index: Path, pages: Sequence[tuple[QualityResult, str]]) -> None:
    """Put a static summary of the gate at the top of the index page.

    GX lists the validation results with a JavaScript table loaded from a
    CDN; this plain HTML list shows the outcome, the messages and the links
    even when the page is opened offline.
    """
    items = []
    for result, link in pages:
        if result.blocking_failures:
            outcome = f"failed: {len(result.blocking_failures)} blocking"
        else:
            outcome = "passed"
        if result.warnings:
            outcome += f", {len(result.warnings)} warnings"
        lines = "".join(
            f"<li><strong>{issue.severity}</strong> <code>{html.escape(issue.check)}</code>: "
            f"{html.escape(issue.message)}</li>"
            for issue in result.issues
        )
        items.append(
            f'<li><a href="{html.escape(link)}">suite <code>{html.escape(result.suite)}</code></a>'
            f" ({result.evaluated} expectations): {outcome}"
            + (f"<ul>{lines}</ul>" if lines else "")
            + "</li>"
        )
    summary = (
        '\n<div class="container-fluid" id="hpd-quality-summary" style="padding: 1em 2em">'
        "<h3>hpd data-quality gate</h3><ul>" + "".join(items) + "</ul></div>\n"
    )
    text = index.read_text(encoding="utf-8")
    text = text.replace("<body>", "<body>" + summary, 1)
    index.write_text(text, encoding="utf-8")

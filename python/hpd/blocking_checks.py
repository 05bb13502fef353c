"""Checks that stop a refresh before the build (SPEC rule 6, §8).

They run in DuckDB on the loaded `raw` schema and name the first offending
file, row and column.
"""

from __future__ import annotations

import duckdb

from hpd.errors import DataError, location
from hpd.project import sdtm_domains


def _first(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[str, int, str] | None:
    row = con.execute(sql).fetchone()
    return (str(row[0]), int(row[1]), str(row[2])) if row else None


def check_subjects(con: duckdb.DuckDBPyConnection) -> None:
    """One DM row per subject, and every subject of another domain in DM."""
    repeated = _first(
        con,
        """
        select _file_name, _row_number, usubjid
        from (
            select *, row_number() over (partition by usubjid order by _row_number) as seen
            from raw.dm
            where usubjid is not null and trim(usubjid) <> ''
        )
        where seen > 1
        order by _row_number
        limit 1
        """,
    )
    if repeated:
        file_name, row, subject = repeated
        raise DataError(
            f"{location(file_name, row, 'USUBJID')}: subject {subject!r} appears twice in DM"
        )
    for spec in sdtm_domains():
        if spec.name == "dm":
            continue
        orphan = _first(
            con,
            f"""
            select _file_name, _row_number, usubjid
            from raw.{spec.name} as d
            where usubjid is not null and trim(usubjid) <> ''
                and not exists (
                    select 1 from raw.dm where trim(raw.dm.usubjid) = trim(d.usubjid)
                )
            order by _row_number
            limit 1
            """,
        )
        if orphan:
            file_name, row, subject = orphan
            raise DataError(
                f"{location(file_name, row, 'USUBJID')}: subject {subject!r} is not in DM"
            )


def check_subjects_kept(con: duckdb.DuckDBPyConnection) -> None:
    """A rejected DM row would orphan its subject's rows in every other domain,
    so it stops the refresh instead of losing them (SPEC rule 6)."""
    rejected = con.execute(
        """
        select source_file, source_row, rejection_column, rejection_reason
        from staging.stg_dm
        where rejection_reason is not null
        order by source_row
        limit 1
        """
    ).fetchone()
    if rejected:
        file_name, row, column, reason = rejected
        raise DataError(
            f"{location(str(file_name), int(row), column)}: {reason}; a subject's DM row "
            "cannot be rejected without losing its rows in the other domains"
        )

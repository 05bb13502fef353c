"""A check that stops a refresh after staging (SPEC rule 6, §8).

The exports suite (`hpd.quality`) checks the subjects of the raw exports
before the build; this one needs staging's parsing.
"""

from __future__ import annotations

import duckdb

from hpd.errors import DataError, location
from hpd.warehouse import Warehouse, as_warehouse


def check_subjects_kept(con: Warehouse | duckdb.DuckDBPyConnection) -> None:
    """A rejected DM row would orphan its subject's rows in every other domain,
    so it stops the refresh instead of losing them (SPEC rule 6)."""
    warehouse = as_warehouse(con)
    rows = warehouse.rows(
        f"""
        select source_file, source_row, rejection_column, rejection_reason
        from {warehouse.table("staging", "stg_dm")}
        where rejection_reason is not null
        order by source_row
        limit 1
        """
    )
    if rows:
        file_name, row, column, reason = rows[0]
        raise DataError(
            f"{location(str(file_name), int(row), column)}: {reason}; a subject's DM row "
            "cannot be rejected without losing its rows in the other domains"
        )

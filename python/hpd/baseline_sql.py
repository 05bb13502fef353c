"""The core kinetics table by one hand-written DuckDB SQL script.

`sql/core_kinetics.sql` reads the export files itself and computes
`hpd.core_kinetics.COLUMNS` for every treated subject (investigator read),
without the warehouse's loading, staging, checks and marts: the engine's own
speed, the floor `make bench` compares the dbt warehouse against.

`core_kinetics` returns the table as a DataFrame. `run` leaves it in the
connection as the temporary table `core_kinetics` and returns its number of
rows, so that a benchmark can time the engine without the fetch into pandas.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import duckdb
import pandas as pd

from hpd.core_kinetics import COLUMNS
from hpd.errors import DataError, location
from hpd.loader import find_export

TABLE = "core_kinetics"

# The columns the script reads (SPEC §1): (required, optional) per domain.
SCRIPT_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "dm": (("usubjid",), ("rfxstdtc",)),
    "ex": (("usubjid", "exstdtc"), ()),
    "tu": (
        ("usubjid", "tulnkid", "tuorres"),
        ("tustresc", "tuloc", "tueval", "visitnum", "tudtc"),
    ),
    "tr": (
        ("usubjid", "trlnkid", "trtestcd", "trdtc"),
        (
            "trstresn",
            "trstresc",
            "trstresu",
            "trorres",
            "trorresu",
            "trstat",
            "treval",
            "visitnum",
            "visit",
        ),
    ),
}

# Parquet columns the script reads as numbers: any numeric type converts to
# the same double as its text would; every other column is read as text.
NUMERIC_COLUMNS = frozenset({"visitnum", "trstresn", "trorres"})


def script() -> str:
    """The SQL script, with its `{dm}`, `{ex}`, `{tu}`, `{tr}` placeholders."""
    return files("hpd").joinpath("sql", "core_kinetics.sql").read_text(encoding="utf-8")


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def reader_sql(path: Path) -> str:
    """A DuckDB table function reading one export file: every column as text
    for CSV (the dialect fixed, as the loader reads it), as stored for Parquet."""
    literal = "'" + str(path).replace("'", "''") + "'"
    if path.suffix.lower() == ".parquet":
        return f"read_parquet({literal})"
    return (
        f"read_csv({literal}, header = true, all_varchar = true, delim = ',', "
        "quote = '\"', escape = '\"')"
    )


def domain_sql(con: duckdb.DuckDBPyConnection, path: Path, domain: str) -> str:
    """The subquery the script reads one domain from: its columns in lower
    case (names matched case-insensitively, null when an optional one is
    absent) and `ordinality`, the row's position in the file from 1."""
    reader = reader_sql(path)
    description = con.execute(f"select * from {reader} limit 0").description or []
    file_columns = {str(column[0]).strip().lower(): column for column in description}
    required, optional = SCRIPT_COLUMNS[domain]
    items = []
    for name in (*required, *optional):
        column = file_columns.get(name)
        if column is None:
            if name in required:
                raise DataError(
                    f"{location(path.name, column=name.upper())}: required column is missing"
                )
            items.append(f"cast(null as varchar) as {name}")
            continue
        source = _quote_identifier(str(column[0]))
        is_text = str(column[1]).upper() in ("VARCHAR", "STRING")
        if is_text or name in NUMERIC_COLUMNS:
            items.append(f"{source} as {name}")
        else:
            items.append(f"cast({source} as varchar) as {name}")
    return f"(select {', '.join(items)}, ordinality from {reader} with ordinality)"


def render(folder: Path, con: duckdb.DuckDBPyConnection) -> str:
    """The script with the export files of `folder` in place of its placeholders."""
    sql = script()
    for domain in SCRIPT_COLUMNS:
        path = find_export(folder, domain)
        if path is None:
            raise DataError(f"{folder / (domain + '.csv')}: required file is missing")
        sql = sql.replace("{" + domain + "}", domain_sql(con, path, domain))
    return sql


def run(folder: Path, con: duckdb.DuckDBPyConnection) -> int:
    """Create the temporary table `core_kinetics` in `con` from the exports
    in `folder`; return its number of rows (one per treated subject)."""
    con.execute(render(folder, con))
    row = con.execute(f"select count(*) from {TABLE}").fetchone()
    return int(row[0]) if row else 0


def core_kinetics(folder: Path, con: duckdb.DuckDBPyConnection | None = None) -> pd.DataFrame:
    """The core kinetics table of the exports in `folder`, one row per treated
    subject, with exactly the columns of `hpd.core_kinetics.COLUMNS`, by
    subject. Runs in `con` when given (the table stays there as
    `core_kinetics`), else in a new in-memory DuckDB."""
    connection = duckdb.connect() if con is None else con
    try:
        run(folder, connection)
        columns = ", ".join(COLUMNS)
        return connection.execute(f"select {columns} from {TABLE} order by usubjid").df()
    finally:
        if con is None:
            connection.close()

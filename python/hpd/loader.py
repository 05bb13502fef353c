"""Load a folder of SDTM exports into the warehouse's `raw` schema.

Each domain file (`dm.csv` or `dm.parquet`, ...) becomes `raw.<domain>` with
every column of the SDTM contract as text (null when the file lacks an
optional one), plus the file name and the row number (from 1 after the header)
that rejected rows point back to. DuckDB reads the files itself.

The same code loads a PostgreSQL warehouse: the files are read and checked
into DuckDB exactly as above (same column mapping, same one-line errors), and
each `raw.<domain>` table is then streamed to the server with `COPY ... FROM
STDIN` (`load_exports(..., target=PostgresWarehouse)`), never row by row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from hpd.csv_diagnosis import diagnose_csv
from hpd.errors import DataError, UsageError, location
from hpd.project import DomainSpec, sdtm_domains
from hpd.warehouse import PostgresWarehouse

SUFFIXES = (".csv", ".parquet")


@dataclass(frozen=True)
class LoadedDomain:
    domain: str
    file_name: str | None
    rows: int


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def find_export(folder: Path, domain: str) -> Path | None:
    """The export file of one domain: `<domain>.csv` or `.parquet`, any case."""
    matches = sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and path.suffix.lower() in SUFFIXES and path.stem.lower() == domain
    )
    if len(matches) > 1:
        names = ", ".join(path.name for path in matches)
        raise DataError(f"{folder}: several files for domain {domain.upper()}: {names}")
    return matches[0] if matches else None


def _reader_sql(path: Path) -> str:
    if path.suffix.lower() == ".parquet":
        return "read_parquet(?)"
    # The dialect is fixed rather than sniffed: a sniffer "repairs" a broken
    # quote or a ragged row into a one-column file instead of refusing it.
    # DuckDB's default read buffer is kept on purpose: a 16 MiB one reads a
    # million subjects' exports 4 s faster, but leaves partly filled row
    # groups that the build's checkpoints then rewrite, for a slower refresh.
    return (
        "read_csv(?, header = true, all_varchar = true, delim = ',', quote = '\"', "
        "escape = '\"', strict_mode = true)"
    )


def _unreadable(path: Path, error: Exception) -> DataError:
    """A one-line error naming the file, and the row and column when known."""
    diagnosis = diagnose_csv(path) if path.suffix.lower() == ".csv" else None
    message = diagnosis or f"{location(path.name)}: cannot be read: {_first_line(error)}"
    return DataError(message)


def _file_columns(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    try:
        description = con.execute(
            f"select * from {_reader_sql(path)} limit 0", [str(path)]
        ).description
    except duckdb.Error as error:
        raise _unreadable(path, error) from error
    return [column[0] for column in description or []]


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _column_map(path: Path, spec: DomainSpec, columns: list[str]) -> dict[str, str]:
    """Contract column (lower case) -> the file's own column name."""
    by_lower: dict[str, str] = {}
    for column in columns:
        key = column.strip().lower()
        if key in spec.columns and key in by_lower:
            raise DataError(
                f"{location(path.name, column=column)}: column given twice ({by_lower[key]})"
            )
        by_lower[key] = column
    for required in spec.required:
        if required not in by_lower:
            raise DataError(
                f"{location(path.name, column=required.upper())}: required column is missing"
            )
    return {key: by_lower[key] for key in spec.columns if key in by_lower}


def load_domain(con: duckdb.DuckDBPyConnection, folder: Path, spec: DomainSpec) -> LoadedDomain:
    path = find_export(folder, spec.name)
    table = f"raw.{spec.name}"
    if path is None:
        if spec.file_required:
            raise DataError(f"{folder / (spec.name + '.csv')}: required file is missing")
        columns_sql = ", ".join(f"cast(null as varchar) as {c}" for c in spec.columns)
        con.execute(
            f"create table {table} as select {columns_sql}, "
            "cast(null as varchar) as _file_name, cast(null as bigint) as _row_number limit 0"
        )
        return LoadedDomain(spec.name, None, 0)

    if path.stat().st_size == 0:
        raise DataError(f"{location(path.name)}: the file is empty (no header row)")
    mapping = _column_map(path, spec, _file_columns(con, path))
    selected = ", ".join(
        f"cast({quote_identifier(mapping[c])} as varchar) as {c}"
        if c in mapping
        else f"cast(null as varchar) as {c}"
        for c in spec.columns
    )
    # The file is written once, as read, in file order (DuckDB preserves
    # insertion order, so the stored table's rowid is the row's position after
    # the header); `raw.<domain>` is a view adding the file name and the row
    # number. Copying 17 million rows of text a second time to number them
    # would double the load.
    rows_table = f"raw.{spec.name}__rows"
    try:
        con.execute(
            f"create table {rows_table} as select {selected} from {_reader_sql(path)}", [str(path)]
        )
    except duckdb.Error as error:
        raise _unreadable(path, error) from error
    con.execute(
        f"create view {table} as select *, {_sql_literal(path.name)} as _file_name, "
        f"rowid + 1 as _row_number from {rows_table}"
    )
    rows = con.execute(f"select count(*) from {table}").fetchone()
    return LoadedDomain(spec.name, path.name, int(rows[0]) if rows else 0)


def load_exports(
    con: duckdb.DuckDBPyConnection, folder: Path, target: PostgresWarehouse | None = None
) -> list[LoadedDomain]:
    """Load every domain of the contract from `folder` into schema `raw` of
    the DuckDB database behind `con`; with a PostgreSQL `target`, also into
    its `raw` schema (`target.schema("raw")`: `raw__building` during a
    refresh), in the same shape."""
    if not folder.is_dir():
        raise UsageError(f"{folder}: exports folder does not exist")
    con.execute("create schema if not exists raw")
    loaded = [load_domain(con, folder, spec) for spec in sdtm_domains()]
    if target is not None:
        for domain in loaded:
            copy_domain(con, domain, target)
    return loaded


def copy_domain(
    con: duckdb.DuckDBPyConnection, domain: LoadedDomain, target: PostgresWarehouse
) -> None:
    """Stream `raw.<domain>` to the PostgreSQL target (COPY FROM STDIN): every
    contract column as text, `_file_name` text, `_row_number` bigint."""
    import psycopg2

    source = domain.file_name or f"{domain.domain}.csv"
    try:
        copied = target.copy_from_duckdb(
            con, f"select * from raw.{domain.domain}", "raw", domain.domain
        )
    except psycopg2.Error as error:
        target.connection.rollback()
        raise DataError(
            f"{location(source)}: cannot be loaded into PostgreSQL: {_first_line(error)}"
        ) from error
    if copied != domain.rows:
        raise DataError(f"{location(source)}: PostgreSQL loaded {copied} rows of {domain.rows}")

"""Where the marts live: one small interface over DuckDB, PostgreSQL and Spark.

The statistics, the report and the quality gate read the marts and write a
few tables back. They do it through a `Warehouse`:

- `frame(sql, params)`: run a query, get a pandas DataFrame;
- `rows(sql, params)`: run a query, get its rows as tuples;
- `write_table(schema, name, frame)`: (re)create a table from a DataFrame;
- `schema(name)`: the physical name of one of the warehouse's schemas (a
  PostgreSQL refresh builds `analytics` as `analytics__building` until the
  swap), for the SQL to name its tables.

SQL is written once, with `?` placeholders, in the dialect both databases
share. Values cross between the two databases as CSV, read and written by
DuckDB on this side (PostgreSQL's `COPY` on the other), so a DataFrame read
from PostgreSQL has exactly the dtypes DuckDB gives the same columns, and a
table written to PostgreSQL the types DuckDB infers for the frame. Doubles
travel in their shortest exact form (PostgreSQL's `extra_float_digits` is set
to 3 on every connection), so no value changes on the way.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# PostgreSQL type OIDs -> DuckDB types (anything else travels as text).
_PG_TO_DUCKDB = {
    16: "BOOLEAN",
    20: "BIGINT",
    21: "SMALLINT",
    23: "INTEGER",
    25: "VARCHAR",
    700: "FLOAT",
    701: "DOUBLE",
    1042: "VARCHAR",
    1043: "VARCHAR",
    1082: "DATE",
    1114: "TIMESTAMP",
    1184: "TIMESTAMPTZ",
    1700: "DOUBLE",
}

# DuckDB types -> PostgreSQL column types, for tables written from frames.
_DUCKDB_TO_PG = {
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "UTINYINT": "smallint",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "HUGEINT": "numeric",
    "UBIGINT": "numeric",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "VARCHAR": "text",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_S": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
}

_CSV_READ = (
    "header = false, auto_detect = false, delim = ',', quote = '\"', escape = '\"', "
    "allow_quoted_nulls = false"
)


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _pg_type(duckdb_type: str) -> str:
    if duckdb_type.startswith("DECIMAL"):
        return "numeric" + duckdb_type[len("DECIMAL") :]
    return _DUCKDB_TO_PG.get(duckdb_type, "text")


def read_csv_frame(path: Path, columns: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """A headerless CSV (as PostgreSQL's COPY writes it) as DuckDB would return
    the same columns: `columns` are (name, DuckDB type)."""
    with duckdb.connect() as con:
        if path.stat().st_size == 0:
            select = ", ".join(
                f"cast(null as {kind}) as {quote_identifier(name)}" for name, kind in columns
            )
            return con.execute(f"select {select} limit 0").df()
        spec = ", ".join(f"{_literal(name)}: {_literal(kind)}" for name, kind in columns)
        return con.execute(
            f"select * from read_csv(?, {_CSV_READ}, columns = {{{spec}}})", [str(path)]
        ).df()


class Warehouse(ABC):
    """The marts' database, as the statistics, the report and the checks see it."""

    kind: str
    label: str

    def schema(self, name: str) -> str:
        """The physical name of the warehouse's schema `name`."""
        return name

    def table(self, schema: str, name: str) -> str:
        """`schema.name`, quoted as needed, with the schema's physical name."""
        return f"{self.schema(schema)}.{quote_identifier(name)}"

    @abstractmethod
    def frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """Run a query (`?` placeholders) and return its result as a DataFrame."""

    @abstractmethod
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query (`?` placeholders) and return its rows."""

    @abstractmethod
    def write_table(self, schema: str, name: str, frame: pd.DataFrame) -> None:
        """Create or replace `schema.name` with the rows of `frame`."""

    @abstractmethod
    def tables(self, schema: str) -> list[str]:
        """The tables and views of a schema, by name."""


class DuckDBWarehouse(Warehouse):
    """A DuckDB warehouse file, through an open connection."""

    kind = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection, label: str | None = None) -> None:
        self.con = con
        self.label = label or _duckdb_path(con)

    def frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        return self.con.execute(sql, list(params)).df()

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, list(params)).fetchall()

    def write_table(self, schema: str, name: str, frame: pd.DataFrame) -> None:
        view = f"_hpd_frame_{name}"
        self.con.execute(f"create schema if not exists {schema}").fetchall()
        self.con.register(view, frame)
        try:
            self.con.execute(
                f"create or replace table {self.table(schema, name)} as select * from {view}"
            ).fetchall()
        finally:
            self.con.unregister(view)

    def tables(self, schema: str) -> list[str]:
        rows = self.con.execute(
            "select table_name from information_schema.tables "
            "where table_schema = ? and table_catalog = current_database() order by table_name",
            [schema],
        ).fetchall()
        return [str(row[0]) for row in rows]


def _duckdb_path(con: duckdb.DuckDBPyConnection) -> str:
    rows = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchall()
    return str(rows[0][0]) if rows and rows[0][0] else "(in memory)"


# --------------------------------------------------------------------------- PostgreSQL


@dataclass(frozen=True)
class PostgresSettings:
    """Where the PostgreSQL warehouse is: the environment variables that
    `profiles.yml` (output `postgres`) reads too, with the same defaults."""

    host: str = "localhost"
    port: int = 5432
    user: str = "postgres"
    password: str = ""
    dbname: str = "hpd"
    sslmode: str = "prefer"
    analyst_role: str = "hpd_analyst"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> PostgresSettings:
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            host=env.get("HPD_PG_HOST", defaults.host),
            port=int(env.get("HPD_PG_PORT", str(defaults.port))),
            user=env.get("HPD_PG_USER", defaults.user),
            password=env.get("HPD_PG_PASSWORD", defaults.password),
            dbname=env.get("HPD_PG_DATABASE", defaults.dbname),
            sslmode=env.get("HPD_PG_SSLMODE", defaults.sslmode),
            analyst_role=env.get("HPD_PG_ANALYST_ROLE", defaults.analyst_role),
        )

    @property
    def label(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def connect(self, dbname: str | None = None) -> Any:
        """A psycopg2 connection (autocommit off) set up to move exact values."""
        import psycopg2

        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password or None,
            dbname=dbname or self.dbname,
            sslmode=self.sslmode,
            application_name="hpd",
            options="-c extra_float_digits=3 -c datestyle=ISO,YMD -c client_encoding=UTF8",
        )


def _pg_query(cursor: Any, sql: str, params: Sequence[Any]) -> str:
    """`sql` with its `?` placeholders filled in, as PostgreSQL text (COPY
    takes no parameters). A `?` inside a string literal is left alone."""
    if not params:
        return sql
    pieces: list[str] = []
    quoted = False
    for char in sql:
        if char == "'":
            quoted = not quoted
        if char == "%":
            pieces.append("%%")
        elif char == "?" and not quoted:
            pieces.append("%s")
        else:
            pieces.append(char)
    rendered = cursor.mogrify("".join(pieces), list(params))
    return rendered.decode() if isinstance(rendered, bytes) else str(rendered)


@contextlib.contextmanager
def _scratch_file(suffix: str = ".csv") -> Iterator[Path]:
    handle, name = tempfile.mkstemp(prefix="hpd-", suffix=suffix)
    os.close(handle)
    path = Path(name)
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


class PostgresWarehouse(Warehouse):
    """A PostgreSQL database, through one psycopg2 connection.

    `schema_suffix` names the schemas a refresh is building (`__building`):
    `schema("analytics")` is then `analytics__building`. A table written into
    `analytics` is readable by `analyst_role` (when given), like the marts.
    Every write runs in the connection's transaction; `commit()` makes it
    visible.
    """

    kind = "postgres"

    def __init__(
        self,
        connection: Any,
        schema_suffix: str = "",
        label: str | None = None,
        analyst_role: str | None = None,
    ):
        self.connection = connection
        self.schema_suffix = schema_suffix
        self.label = label or "postgresql"
        self.analyst_role = analyst_role

    @classmethod
    def connect(
        cls,
        settings: PostgresSettings | None = None,
        schema_suffix: str = "",
        analyst_role: str | None = None,
    ) -> PostgresWarehouse:
        settings = settings or PostgresSettings.from_env()
        return cls(settings.connect(), schema_suffix, settings.label, analyst_role)

    def schema(self, name: str) -> str:
        return name + self.schema_suffix

    def commit(self) -> None:
        self.connection.commit()

    def close(self) -> None:
        self.connection.close()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(_pg_query(cursor, sql, params))

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.connection.cursor() as cursor:
            cursor.execute(_pg_query(cursor, sql, params))
            return [tuple(row) for row in cursor.fetchall()]

    def frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        with self.connection.cursor() as cursor:
            query = _pg_query(cursor, sql, params)
            cursor.execute(f"select * from ({query}) as hpd_query limit 0")
            columns = [
                (str(column.name), _PG_TO_DUCKDB.get(column.type_code, "VARCHAR"))
                for column in cursor.description or []
            ]
            with _scratch_file() as path:
                with path.open("w", encoding="utf-8", newline="") as handle:
                    cursor.copy_expert(f"copy ({query}) to stdout with (format csv)", handle)
                return read_csv_frame(path, columns)

    def write_table(self, schema: str, name: str, frame: pd.DataFrame) -> None:
        with duckdb.connect() as con:
            con.register("hpd_frame", frame)
            self.copy_from_duckdb(con, "select * from hpd_frame", schema, name)
        if schema == "analytics" and self.analyst_role:
            self.execute(
                f"grant select on {self.table(schema, name)} to {quote_identifier(self.analyst_role)}"
            )

    def copy_from_duckdb(
        self, con: duckdb.DuckDBPyConnection, select_sql: str, schema: str, name: str
    ) -> int:
        """(Re)create `schema.name` with the rows of a DuckDB query, streamed
        as CSV through `COPY ... FROM STDIN` (never row by row). Column types
        follow DuckDB's (text for types without a counterpart). Returns the
        number of rows PostgreSQL loaded."""
        described = con.execute(f"describe {select_sql}").fetchall()
        columns = [(str(row[0]), str(row[1])) for row in described]
        definition = ", ".join(
            f"{quote_identifier(column)} {_pg_type(kind)}" for column, kind in columns
        )
        projection = ", ".join(
            quote_identifier(column)
            if _pg_type(kind) != "text" or kind == "VARCHAR"
            else f"cast({quote_identifier(column)} as varchar) as {quote_identifier(column)}"
            for column, kind in columns
        )
        table = self.table(schema, name)
        with _scratch_file() as path:
            con.execute(
                f"copy (select {projection} from ({select_sql})) to ? (format csv, header false)",
                [str(path)],
            )
            with self.connection.cursor() as cursor:
                cursor.execute(
                    f"create schema if not exists {quote_identifier(self.schema(schema))}"
                )
                cursor.execute(f"drop table if exists {table}")
                cursor.execute(f"create table {table} ({definition})")
                with path.open("r", encoding="utf-8", newline="") as handle:
                    cursor.copy_expert(f"copy {table} from stdin with (format csv)", handle)
                return int(cursor.rowcount)

    def copy_to_duckdb(
        self, con: duckdb.DuckDBPyConnection, schema: str, into_schema: str | None = None
    ) -> list[str]:
        """Copy every table and view of `schema` into DuckDB (`into_schema`,
        by default the logical schema name), with DuckDB's counterparts of
        the column types. Returns the table names."""
        target = into_schema or schema
        con.execute(f"create schema if not exists {quote_identifier(target)}")
        copied = []
        for name in self.tables(schema):
            source = self.table(schema, name)
            with self.connection.cursor() as cursor:
                cursor.execute(f"select * from {source} limit 0")
                columns = [
                    (str(column.name), _PG_TO_DUCKDB.get(column.type_code, "VARCHAR"))
                    for column in cursor.description or []
                ]
                definition = ", ".join(f"{quote_identifier(c)} {kind}" for c, kind in columns)
                relation = f"{quote_identifier(target)}.{quote_identifier(name)}"
                con.execute(f"create or replace table {relation} ({definition})")
                with _scratch_file() as path:
                    with path.open("w", encoding="utf-8", newline="") as handle:
                        cursor.copy_expert(
                            f"copy (select * from {source}) to stdout with (format csv)", handle
                        )
                    if path.stat().st_size:
                        spec = ", ".join(f"{_literal(c)}: {_literal(kind)}" for c, kind in columns)
                        con.execute(
                            f"insert into {relation} select * from read_csv(?, {_CSV_READ}, "
                            f"columns = {{{spec}}})",
                            [str(path)],
                        )
            copied.append(name)
        return copied

    def tables(self, schema: str) -> list[str]:
        rows = self.rows(
            "select table_name from information_schema.tables "
            "where table_schema = ? order by table_name",
            [self.schema(schema)],
        )
        return [str(row[0]) for row in rows]


# --------------------------------------------------------------------------- Spark


def spark_identifier(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def spark_string(text: str) -> str:
    """A Spark SQL string literal (backslash escapes are read in them)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class SparkWarehouse(Warehouse):
    """Databases of a Spark catalog, through a SparkSession (pyspark is
    imported by whoever made the session: DuckDB users never load it).

    `schema_suffix` names the databases a refresh is building, as on
    PostgreSQL. Results cross to pandas through Arrow and DuckDB, so a frame
    has exactly the dtypes DuckDB gives the same columns. A table written
    from a frame is a Parquet file written by DuckDB under `data_root`
    (`<data_root>/<schema>/<name>/`) and registered as an external Parquet
    table; an existing table of the same columns is pointed at the new files
    in one catalog update (`hpd.spark.point_table`), never filled row by row.
    """

    kind = "spark"

    def __init__(
        self,
        session: SparkSession,
        schema_suffix: str = "",
        label: str | None = None,
        data_root: Path | None = None,
    ) -> None:
        self.session = session
        self.schema_suffix = schema_suffix
        self.label = label or "spark"
        self.data_root = data_root

    def schema(self, name: str) -> str:
        return name + self.schema_suffix

    def table(self, schema: str, name: str) -> str:
        return f"{spark_identifier(self.schema(schema))}.{spark_identifier(name)}"

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.session.sql(sql, args=list(params) or None).collect()

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.session.sql(sql, args=list(params) or None).collect()]

    def arrow(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """A query's result as a pyarrow Table (Spark's types, Arrow's values),
        written by Spark as Parquet files and read by DuckDB: collecting
        millions of rows through Spark's driver would need them all in its
        heap at once."""
        result = self.session.sql(sql, args=list(params) or None)
        with tempfile.TemporaryDirectory(prefix="hpd-spark-result-") as scratch:
            folder = Path(scratch) / "result"
            result.write.parquet(str(folder))
            files = sorted(str(path) for path in folder.glob("*.parquet"))
            if not files:  # no rows: no file to read the columns from
                return result.limit(0).toArrow()
            with duckdb.connect() as con:
                return con.read_parquet(files).to_arrow_table()

    def frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        result = self.arrow(sql, params)
        with duckdb.connect() as con:
            con.register("hpd_result", result)
            return con.execute("select * from hpd_result").df()

    def write_table(self, schema: str, name: str, frame: pd.DataFrame) -> None:
        with duckdb.connect() as con:
            con.register("hpd_frame", frame)
            self.write_from_duckdb(con, "select * from hpd_frame", schema, name)

    def write_from_duckdb(
        self, con: duckdb.DuckDBPyConnection, select_sql: str, schema: str, name: str
    ) -> int:
        """(Re)create `schema.name` from a DuckDB query: DuckDB writes the rows
        as one Parquet file, Spark reads them as a table. Returns the number
        of rows Spark sees there."""
        from hpd.spark import point_table

        if self.data_root is None:
            raise ValueError("this Spark warehouse has no folder for new tables (data_root)")
        folder = self.data_root / schema / name
        if folder.exists():
            raise ValueError(f"{folder}: already written by this refresh")
        folder.mkdir(parents=True)
        con.execute(
            f"copy ({select_sql}) to ? (format parquet)", [str(folder / "part-00000.parquet")]
        )
        point_table(self.session, self.schema(schema), name, folder)
        counted = self.rows(f"select count(*) from {self.table(schema, name)}")
        return int(counted[0][0])

    def copy_to_duckdb(
        self, con: duckdb.DuckDBPyConnection, schema: str, into_schema: str | None = None
    ) -> list[str]:
        """Copy every table of `schema` into DuckDB (`into_schema`, by default
        the logical schema name) through Arrow. Returns the table names."""
        target = into_schema or schema
        con.execute(f"create schema if not exists {quote_identifier(target)}")
        copied = []
        for name in self.tables(schema):
            into = f"{quote_identifier(target)}.{quote_identifier(name)}"
            files = self.parquet_files(schema, name)
            if files:
                # The table's own files, read in place: nothing through Spark.
                con.execute(
                    f"create or replace table {into} as select * from read_parquet(?)", [files]
                )
            else:
                con.register("hpd_result", self.arrow(f"select * from {self.table(schema, name)}"))
                try:
                    con.execute(f"create or replace table {into} as select * from hpd_result")
                finally:
                    con.unregister("hpd_result")
            copied.append(name)
        return copied

    def parquet_files(self, schema: str, name: str) -> list[str]:
        """The Parquet files of a table on this machine's file system; empty
        when it has none there (no rows, or files on a cluster's storage)."""
        from urllib.parse import unquote, urlparse

        from hpd.spark import table_location

        location = urlparse(table_location(self.session, self.schema(schema), name))
        if location.scheme not in ("", "file"):
            return []
        folder = Path(unquote(location.path))
        return sorted(str(path) for path in folder.glob("*.parquet"))

    def tables(self, schema: str) -> list[str]:
        if not self.session.catalog.databaseExists(self.schema(schema)):
            return []
        rows = self.rows(f"show tables in {spark_identifier(self.schema(schema))}")
        return sorted(str(row[1]) for row in rows if not row[2])


def as_warehouse(source: Warehouse | duckdb.DuckDBPyConnection) -> Warehouse:
    """A Warehouse for a DuckDB connection (or the warehouse itself)."""
    if isinstance(source, Warehouse):
        return source
    return DuckDBWarehouse(source)

"""What a refresh hands to BI tools besides the warehouse itself.

- Parquet: every table of `analytics` as one file, in a folder per refresh,
  with a stable `latest` link for tools that read files.
- A serving DuckDB file: `analytics` (tables) and `analytics_deid` (views
  over them) only, replaced atomically with the warehouse, for BI tools that
  open a DuckDB file read-only (they never see staging or raw data, nor a
  half-built file).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import duckdb

SERVED_SCHEMAS = ("analytics", "analytics_deid")
KEEP_PARQUET_RUNS = 5


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _relations(con: duckdb.DuckDBPyConnection, schema: str, tables_only: bool = False) -> list[str]:
    rows = con.execute(
        "select table_name from information_schema.tables "
        "where table_schema = ? and table_catalog = current_database() "
        "and (not ? or table_type = 'BASE TABLE') order by table_name",
        [schema, tables_only],
    ).fetchall()
    return [str(row[0]) for row in rows]


def _view_definitions(con: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    rows = con.execute(
        "select sql from duckdb_views() where schema_name = ? "
        "and database_name = current_database() and not internal order by view_name",
        [schema],
    ).fetchall()
    return [str(row[0]) for row in rows]


def export_parquet(con: duckdb.DuckDBPyConnection, folder: Path) -> list[Path]:
    """Write every table and view of `analytics` to `folder/<name>.parquet`."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in _relations(con, "analytics"):
        path = folder / f"{name}.parquet"
        con.execute(
            f"copy (select * from analytics.{quote_identifier(name)}) to ? (format parquet)",
            [str(path)],
        )
        written.append(path)
    return written


def publish_parquet(staged: Path, root: Path, run_id: str) -> Path:
    """Move a refresh's Parquet folder to `root/<run_id>`, point `root/latest`
    at it (replaced atomically) and keep the last few refreshes."""
    root.mkdir(parents=True, exist_ok=True)
    target = root / run_id
    shutil.rmtree(target, ignore_errors=True)
    staged.rename(target)
    link = root / "latest"
    temporary = root / f".latest-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    temporary.symlink_to(run_id, target_is_directory=True)
    os.replace(temporary, link)
    runs = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())
    for old in runs[:-KEEP_PARQUET_RUNS]:
        shutil.rmtree(old, ignore_errors=True)
    return link


def write_serving(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Copy the served schemas of the warehouse behind `con` into a new file:
    tables as tables, views (the de-identified ones) as the same views. A view
    names `analytics` without a database, so in the serving file it reads the
    copies there, computed when queried rather than stored twice."""
    for leftover in (path, path.with_name(path.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
    (database,) = con.execute("select current_database()").fetchone() or ("memory",)
    warehouse = quote_identifier(str(database))
    con.execute("attach ? as hpd_serving", [str(path)])
    try:
        views = []
        for schema in SERVED_SCHEMAS:
            con.execute(f"create schema hpd_serving.{schema}")
            for name in _relations(con, schema, tables_only=True):
                relation = f"{schema}.{quote_identifier(name)}"
                con.execute(f"create table hpd_serving.{relation} as select * from {relation}")
            views += _view_definitions(con, schema)
        con.execute("use hpd_serving")
        try:
            for definition in views:
                con.execute(definition)
        finally:
            con.execute(f"use {warehouse}")
    finally:
        con.execute("detach hpd_serving")


def serving_path(warehouse: Path) -> Path:
    stem = warehouse.name.split(".")[0]
    return warehouse.with_name(f"{stem}.serving.duckdb")

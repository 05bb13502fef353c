"""The warehouse on PostgreSQL: a refresh that never shows half-built marts,
the analyst role, and the one-off set-up (`hpd pg-setup`).

A refresh builds every schema of the warehouse under a suffixed name
(`raw__building`, `staging__building`, ..., `analytics__building`: dbt var
`schema_suffix`, read by the `generate_schema_name` macro and the `sdtm`
source), checks it (dbt's data tests, the blocking checks, the marts suite
of the quality gate), writes the statistics into it, and only then renames
the new schemas into place in one transaction: the published schemas become
`<name>__previous`, the building ones `<name>`, and the previous ones are
dropped, all committed at once. Analysts' queries see the old marts or the
new ones, never a mix; a refresh that fails drops its `__building` schemas
and leaves the published ones as they were.

One refresh at a time: a refresh holds a PostgreSQL advisory lock for its
whole run (exit status 3 for a second one).

Its stages are those of a DuckDB refresh (`hpd.runs.STAGES`) less `docs`,
plus `copy` (the checked exports streamed to the server) after
`quality_exports`.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import duckdb

from hpd.blocking_checks import check_subjects_kept
from hpd.errors import LockedError, UsageError
from hpd.loader import LoadedDomain, copy_domain
from hpd.outputs import publish_parquet
from hpd.quality import QualityResult
from hpd.report import build_report
from hpd.runs import Monitor, critical_section
from hpd.warehouse import PostgresSettings, PostgresWarehouse, quote_identifier

if TYPE_CHECKING:
    from hpd.refresh import Progress, RefreshOptions, RefreshResult

# Every schema a refresh writes, in build order; they belong to the warehouse.
MANAGED_SCHEMAS = (
    "raw",
    "demo",
    "reference",
    "staging",
    "intermediate",
    "analytics",
    "analytics_deid",
)
BUILDING = "__building"
PREVIOUS = "__previous"
# The schema the analyst role may read (SPEC §4): nothing else.
ANALYST_SCHEMA = "analytics"
# pg_advisory_lock key of a refresh: "hpd" in ASCII.
LOCK_KEY = 0x687064
# Collations that sort text by bytes (code points), as DuckDB does.
ORDERING_COLLATIONS = ("C", "POSIX", "C.UTF-8", "C.utf8")


def _schemas(warehouse: PostgresWarehouse) -> set[str]:
    return {str(row[0]) for row in warehouse.rows("select nspname from pg_namespace")}


def _pg_error() -> type[Exception]:
    import psycopg2

    return psycopg2.Error


@contextlib.contextmanager
def refresh_lock(warehouse: PostgresWarehouse) -> Iterator[None]:
    """One refresh of a PostgreSQL warehouse at a time (a session-level
    advisory lock, released when the refresh ends or its connection drops)."""
    rows = warehouse.rows("select pg_try_advisory_lock(?)", [LOCK_KEY])
    warehouse.commit()
    if not rows or not rows[0][0]:
        raise LockedError(f"{warehouse.label}: another refresh of this warehouse is running")
    try:
        yield
    finally:
        with contextlib.suppress(_pg_error()):
            warehouse.connection.rollback()
            warehouse.rows("select pg_advisory_unlock(?)", [LOCK_KEY])
            warehouse.commit()


def check_database(warehouse: PostgresWarehouse, settings: PostgresSettings) -> None:
    """Refuse a database that cannot give DuckDB's answers, or lacks the
    analyst role the marts are granted to (`hpd pg-setup` makes both right)."""
    rows = warehouse.rows(
        "select datcollate, datlocprovider, coalesce(daticulocale, '') from pg_database "
        "where datname = current_database()"
    )
    collation, provider, icu_locale = (str(v) for v in rows[0]) if rows else ("?", "c", "")
    if provider != "c" or collation not in ORDERING_COLLATIONS:
        shown = f"ICU {icu_locale}" if provider == "i" else collation
        raise UsageError(
            f"{settings.label}: the database sorts text by collation {shown!r}; the "
            "warehouse needs byte order (LC_COLLATE 'C') to give the same answers as on "
            "DuckDB: create the database with `hpd pg-setup` (or CREATE DATABASE ... "
            "TEMPLATE template0 LC_COLLATE 'C')"
        )
    role = warehouse.rows("select 1 from pg_roles where rolname = ?", [settings.analyst_role])
    if not role:
        raise UsageError(
            f"{settings.label}: the analyst role {settings.analyst_role!r} does not exist; "
            "create it once with `hpd pg-setup` (as a user allowed to create roles)"
        )
    warehouse.commit()


def drop_schemas(warehouse: PostgresWarehouse, suffix: str) -> None:
    """Drop the warehouse's schemas that carry `suffix` (a refresh's leftovers)."""
    existing = _schemas(warehouse)
    for name in MANAGED_SCHEMAS:
        if name + suffix in existing:
            warehouse.execute(f"drop schema {quote_identifier(name + suffix)} cascade")
    warehouse.commit()


def grant_analyst(warehouse: PostgresWarehouse, role: str) -> None:
    """Let the analyst role into the analytics schema being built (dbt's
    `grants` config gives it SELECT on each mart, `write_table` on the
    statistics tables); the grants move with the schema when it is renamed."""
    warehouse.execute(
        f"grant usage on schema {quote_identifier(warehouse.schema(ANALYST_SCHEMA))} "
        f"to {quote_identifier(role)}"
    )


def swap_schemas(warehouse: PostgresWarehouse) -> list[str]:
    """Publish the `__building` schemas in one transaction; returns their names.

    A published schema the new build does not have (e.g. `demo` after a
    refresh from exports) is dropped with the previous ones, as the DuckDB
    refresh replaces the whole file."""
    existing = _schemas(warehouse)
    published = []
    for name in MANAGED_SCHEMAS:
        building, previous = name + BUILDING, name + PREVIOUS
        if previous in existing:
            warehouse.execute(f"drop schema {quote_identifier(previous)} cascade")
        if name in existing:
            warehouse.execute(
                f"alter schema {quote_identifier(name)} rename to {quote_identifier(previous)}"
            )
        if building in existing:
            warehouse.execute(
                f"alter schema {quote_identifier(building)} rename to {quote_identifier(name)}"
            )
            published.append(name)
    for name in MANAGED_SCHEMAS:
        if name in existing:
            warehouse.execute(f"drop schema {quote_identifier(name + PREVIOUS)} cascade")
    warehouse.commit()
    return published


def refresh_postgres(options: RefreshOptions, monitor: Monitor) -> RefreshResult:
    """`hpd run --target postgres`: the refresh of `hpd.refresh.refresh`, on the
    server named by the HPD_PG_* variables (see the module docstring)."""
    from hpd.refresh import (
        RefreshResult,
        _publish_reports,
        build_warehouse,
        check_server_marts,
        dbt_variables,
        export_server_marts,
        server_exports,
    )

    progress = monitor.progress
    started = time.monotonic()
    settings = PostgresSettings.from_env()
    reports = options.reports.resolve()
    reports.parent.mkdir(parents=True, exist_ok=True)
    staged_reports = reports.with_name(reports.name + ".building")
    shutil.rmtree(staged_reports, ignore_errors=True)
    work_dir = reports.parent / "postgres.dbt"
    work_dir.mkdir(parents=True, exist_ok=True)
    monitor.use_work_dir(work_dir)
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    parquet_root = (options.parquet or reports.parent / "parquet").resolve()
    staged_parquet = parquet_root / f".building-{run_id}"
    try:
        warehouse = PostgresWarehouse.connect(
            settings, schema_suffix=BUILDING, analyst_role=settings.analyst_role
        )
    except _pg_error() as error:
        raise UsageError(f"{settings.label}: cannot connect: {_first_line(error)}") from error
    quality: list[QualityResult] = []
    try:
        with refresh_lock(warehouse):
            try:
                check_database(warehouse, settings)
                drop_schemas(warehouse, BUILDING)
                with server_exports(
                    options,
                    work_dir,
                    quality,
                    staged_reports,
                    monitor,
                    functools.partial(_copy_exports, warehouse, monitor),
                ) as (exports_db, loaded):
                    nodes = build_warehouse(
                        options,
                        monitor,
                        work_dir,
                        {**dbt_variables(options), "schema_suffix": BUILDING},
                        name_cause=lambda: _name_cause(warehouse),
                        target="postgres",
                    )
                    data_docs = check_server_marts(
                        warehouse, exports_db, quality, staged_reports, reports, monitor
                    )
                with monitor.stage("statistics_report"):
                    progress("statistics, figures and report")
                    report = build_report(
                        warehouse, staged_reports, options.definition, settings.label
                    )
                    grant_analyst(warehouse, settings.analyst_role)
                marts = export_server_marts(warehouse, staged_parquet, monitor)
                with monitor.stage("publish"):
                    progress("publishing: renaming the new schemas into place (one transaction)")
                    # An interrupt waits for the commit and the renames that follow it.
                    with critical_section():
                        swap_schemas(warehouse)
                        monitor.published = True
                        parquet = publish_parquet(staged_parquet, parquet_root, run_id)
                        _publish_reports(staged_reports, reports)
            except BaseException:
                # Only this refresh's schemas: the lock is still held.
                if not monitor.published:
                    with contextlib.suppress(Exception):
                        warehouse.connection.rollback()
                        drop_schemas(warehouse, BUILDING)
                raise
    except BaseException:
        shutil.rmtree(staged_reports, ignore_errors=True)
        shutil.rmtree(staged_parquet, ignore_errors=True)
        raise
    finally:
        with contextlib.suppress(Exception):
            warehouse.close()
    return RefreshResult(
        warehouse=settings.label,
        reports=reports,
        loaded=loaded,
        nodes=nodes,
        seconds=time.monotonic() - started,
        report=reports / report.html.name,
        data_docs=reports / data_docs.relative_to(staged_reports),
        docs_site=None,
        serving=None,
        parquet=parquet,
        quality=quality,
        target="postgres",
        marts=marts,
    )


def _copy_exports(
    warehouse: PostgresWarehouse,
    monitor: Monitor,
    exports_db: duckdb.DuckDBPyConnection,
    loaded: list[LoadedDomain],
) -> None:
    """Stream the checked exports to the server's `raw__building` (COPY)."""
    monitor.progress(f"copying the exports to {warehouse.label} (COPY)")
    for domain in loaded:
        copy_domain(exports_db, domain, warehouse)
    warehouse.commit()


def _name_cause(warehouse: PostgresWarehouse) -> None:
    with contextlib.suppress(_pg_error()):
        warehouse.connection.rollback()
        check_subjects_kept(warehouse)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


# --------------------------------------------------------------------------- set-up


def pg_setup(
    settings: PostgresSettings,
    login: bool = False,
    password: str | None = None,
    members: tuple[str, ...] = (),
    progress: Progress = print,
) -> None:
    """Prepare a server for the warehouse, once, as a user allowed to create
    databases and roles (idempotent):

    - the database HPD_PG_DATABASE, created if missing with byte-order
      collation (LC_COLLATE 'C'; LC_CTYPE 'C.UTF-8' where the server has it,
      so upper() handles accents as DuckDB does);
    - the analyst role HPD_PG_ANALYST_ROLE (NOLOGIN, a group role: grant it to
      analysts with `members`; `login` makes it a login role itself, with
      `password`), allowed to connect to the database. Each refresh grants it
      USAGE on schema `analytics` and SELECT on its tables, and nothing else:
      raw, staging and intermediate stay unreadable to it.
    """
    import psycopg2
    from psycopg2 import sql

    admin = settings.connect(dbname="postgres")
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute("select 1 from pg_database where datname = %s", [settings.dbname])
            if cursor.fetchone() is None:
                create = sql.SQL(
                    "create database {} template template0 encoding 'UTF8' "
                    "lc_collate 'C' lc_ctype {}"
                )
                try:
                    cursor.execute(
                        create.format(sql.Identifier(settings.dbname), sql.Literal("C.UTF-8"))
                    )
                except psycopg2.Error:
                    cursor.execute(create.format(sql.Identifier(settings.dbname), sql.Literal("C")))
                progress(f"created database {settings.dbname} (collation C)")
            role = sql.Identifier(settings.analyst_role)
            cursor.execute("select 1 from pg_roles where rolname = %s", [settings.analyst_role])
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("create role {} nologin").format(role))
                progress(f"created role {settings.analyst_role}")
            if login:
                cursor.execute(
                    sql.SQL("alter role {} login password {}").format(
                        role, sql.Literal(password) if password else sql.SQL("null")
                    )
                )
                progress(f"role {settings.analyst_role} may log in")
            cursor.execute(
                sql.SQL("grant connect on database {} to {}").format(
                    sql.Identifier(settings.dbname), role
                )
            )
            for member in members:
                cursor.execute(sql.SQL("grant {} to {}").format(role, sql.Identifier(member)))
                progress(f"granted {settings.analyst_role} to {member}")
    finally:
        admin.close()

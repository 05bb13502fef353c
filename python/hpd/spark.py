"""The warehouse on Apache Spark: the session, a refresh that never shows
half-built marts, and the report on the published marts.

A Spark warehouse is one folder (`--spark-warehouse`, HPD_SPARK_WAREHOUSE):
the catalog (an embedded Derby metastore, `metastore_db/`), and under
`data/<run>/<schema>/<table>/` the Parquet files of each refresh. Every table
is an external Parquet table over such a folder.

A refresh reads and checks the exports in DuckDB exactly as a DuckDB refresh
does (same one-line errors), writes each `raw` table as a Parquet file that
Spark registers (no row inserts), and builds with dbt-spark into
`<schema>__building` databases whose tables write their files under the
refresh's own `data/<run>/`. It runs dbt's data tests, the blocking checks
and the quality gate (on a DuckDB copy of the new marts) and writes the
statistics there. Only then does it publish: Spark cannot rename a database
nor swap tables in one transaction, so each published table is pointed at
its new files in one catalog update (`ALTER TABLE ... SET LOCATION`, or drop
and create when its columns changed). A table is always the old version or
the new one in full, never a mix; the tables switch one after another in
the last step, a loop of catalog updates. A refresh that fails before it
drops its `__building` databases and its folder and leaves the published
tables as they were. The previous refresh's files are kept until the next
refresh publishes, for readers still on them.

One refresh at a time: a refresh holds a lock file in the warehouse folder
(exit status 3 for a second one). The embedded metastore also admits one
process at a time; a shared metastore or a cluster is a matter of
HPD_SPARK_CONF (README, "Spark").
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import duckdb

from hpd.blocking_checks import check_subjects_kept
from hpd.errors import DataError, UsageError, location
from hpd.loader import LoadedDomain
from hpd.outputs import publish_parquet
from hpd.quality import QualityResult
from hpd.report import build_report, definition_ids
from hpd.runs import Monitor, critical_section
from hpd.warehouse import SparkWarehouse, spark_identifier, spark_string

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.types import StructType

    from hpd.refresh import Progress, RefreshOptions, RefreshResult

# Every database a refresh writes, in build order; they belong to the
# warehouse (the same schemas as on PostgreSQL).
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
DEFAULT_WAREHOUSE = Path("build/spark-warehouse")


@dataclass(frozen=True)
class SparkSettings:
    """Where the Spark warehouse is and how the session runs: `--spark-warehouse`
    or the HPD_SPARK_* variables."""

    warehouse: Path
    master: str = "local[2]"
    # Spark's default of 200 makes every small query pay for 200 tasks.
    shuffle_partitions: int = 4
    driver_memory: str = "4g"
    # A file of extra Spark settings, `key value` per line (spark-defaults
    # style): a shared metastore, a cluster's master, memory.
    conf_file: Path | None = None

    @classmethod
    def from_env(
        cls, warehouse: Path | None = None, environ: dict[str, str] | None = None
    ) -> SparkSettings:
        env = os.environ if environ is None else environ
        defaults = cls(warehouse=DEFAULT_WAREHOUSE)
        folder = warehouse or Path(env.get("HPD_SPARK_WAREHOUSE", str(DEFAULT_WAREHOUSE)))
        conf = env.get("HPD_SPARK_CONF")
        try:
            partitions = int(env.get("HPD_SPARK_SHUFFLE_PARTITIONS", defaults.shuffle_partitions))
        except ValueError as error:
            raise UsageError("HPD_SPARK_SHUFFLE_PARTITIONS must be a whole number") from error
        settings = cls(
            warehouse=folder.resolve(),
            master=env.get("HPD_SPARK_MASTER", defaults.master),
            shuffle_partitions=partitions,
            driver_memory=env.get("HPD_SPARK_DRIVER_MEMORY", defaults.driver_memory),
            conf_file=Path(conf).resolve() if conf else None,
        )
        if any(char in str(settings.warehouse) for char in "'\\`"):
            raise UsageError(f"{settings.warehouse}: a Spark warehouse path may not contain ' \\ `")
        return settings

    @property
    def label(self) -> str:
        return f"spark:{self.warehouse}"

    @property
    def data(self) -> Path:
        return self.warehouse / "data"

    def extra_conf(self) -> dict[str, str]:
        if self.conf_file is None:
            return {}
        if not self.conf_file.is_file():
            raise UsageError(f"{self.conf_file}: HPD_SPARK_CONF names no file")
        conf = {}
        for line in self.conf_file.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                key, _, value = line.partition(" ")
                conf[key.strip()] = value.strip()
        return conf


# --------------------------------------------------------------------------- the session

# One SparkSession per process (one JVM): a session for another warehouse
# stops this one first.
_active: tuple[SparkSettings, SparkSession] | None = None

_LOG4J2 = """\
# Written by hpd: Spark's own log, errors only, on stderr.
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = spark: %p %c{1}: %m%n%ex{3}
# pyspark's start-up lines ("Setting default log level...") are printed
# unless the logger of the class that starts the JVM has the root's level.
logger.submit.name = org.apache.spark.deploy.SparkSubmit
logger.submit.level = error
logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer
logger.gateway.level = error
"""


def _check_java() -> None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return
    if shutil.which("java") is None:
        raise UsageError(
            "Spark needs Java 17 or later: install a JDK or JRE (Debian: "
            "openjdk-17-jre-headless) or set JAVA_HOME"
        )


def spark_session(settings: SparkSettings) -> SparkSession:
    """The process's SparkSession for `settings`, started on first use with
    the warehouse's catalog and folders (dbt-spark's `method: session` then
    finds it: its getOrCreate returns this session)."""
    global _active
    if _active is not None:
        known, session = _active
        if known == settings and session.sparkContext._jsc is not None:
            return session
        session.stop()
        _active = None
    _check_java()
    try:
        from pyspark.sql import SparkSession
    except ImportError as error:  # pragma: no cover - a dependency of the project
        raise UsageError("the Spark target needs pyspark: pip install pyspark") from error

    folder = settings.warehouse
    folder.mkdir(parents=True, exist_ok=True)
    log_config = folder / "log4j2.properties"
    log_config.write_text(_LOG4J2, encoding="utf-8")
    java_options = f"-Dderby.system.home={folder} -Dlog4j2.configurationFile={log_config.as_uri()}"
    builder = (
        SparkSession.builder.appName("hpd")
        .master(settings.master)
        .config("spark.driver.memory", settings.driver_memory)
        .config("spark.driver.extraJavaOptions", java_options)
        .config("spark.sql.warehouse.dir", str(folder / "managed"))
        .config(
            "spark.hadoop.javax.jdo.option.ConnectionURL",
            f"jdbc:derby:;databaseName={folder / 'metastore_db'};create=true",
        )
        .config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
        # dbt-spark turns ANSI mode off on every connection (Spark 3 and 4
        # alike); the session does too, so hpd's own queries read the same.
        .config("spark.sql.ansi.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.sources.default", "parquet")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .enableHiveSupport()
    )
    for key, value in settings.extra_conf().items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as error:
        raise UsageError(f"{settings.label}: Spark did not start: {_first_line(error)}") from error
    session.sparkContext.setLogLevel("ERROR")
    # pyspark logs every failed query's context as JSON on stderr; the
    # failure itself reaches the caller (dbt's log, hpd's one-line error).
    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)
    _active = (settings, session)
    return session


def stop_session() -> None:
    """Stop the process's SparkSession, if any (the JVM stays up)."""
    global _active
    if _active is not None:
        _active[1].stop()
        _active = None


def open_warehouse(
    settings: SparkSettings, data_root: Path | None = None, schema_suffix: str = ""
) -> SparkWarehouse:
    return SparkWarehouse(
        spark_session(settings), schema_suffix=schema_suffix, label=settings.label,
        data_root=data_root,
    )  # fmt: skip


def refresh_lock(settings: SparkSettings) -> contextlib.AbstractContextManager[None]:
    """One refresh (or report) of a Spark warehouse at a time (exit status 3)."""
    from hpd.refresh import file_lock

    settings.warehouse.mkdir(parents=True, exist_ok=True)
    return file_lock(settings.warehouse / "refresh.lock", settings.label)


# --------------------------------------------------------------------------- the catalog


def _database_exists(session: SparkSession, name: str) -> bool:
    return bool(session.catalog.databaseExists(name))


def _table_names(session: SparkSession, database: str) -> list[str]:
    if not _database_exists(session, database):
        return []
    rows = session.sql(f"show tables in {spark_identifier(database)}").collect()
    return sorted(str(row[1]) for row in rows if not row[2])


def _columns(schema: StructType) -> list[tuple[str, str]]:
    return [(field.name, field.dataType.simpleString()) for field in schema.fields]


def table_location(session: SparkSession, database: str, name: str) -> str:
    """Where the files of `database.name` are (a URI)."""
    rows = session.sql(
        f"describe table extended {spark_identifier(database)}.{spark_identifier(name)}"
    ).collect()
    for row in rows:
        if row[0] == "Location":
            return str(row[1])
    raise DataError(f"{database}.{name}: Spark gives no location for this table")


def point_table(
    session: SparkSession,
    database: str,
    name: str,
    folder: Path | str,
    schema: StructType | None = None,
) -> None:
    """Make `database.name` the external Parquet table over `folder`: an
    existing table of the same columns is pointed at it in one catalog
    update, so a reader sees its old files or its new ones; one whose
    columns differ is dropped and created again. `schema` defaults to the
    files' own."""
    table = f"{spark_identifier(database)}.{spark_identifier(name)}"
    where = spark_string(str(folder))
    if schema is None:
        schema = session.read.parquet(str(folder)).schema
    session.sql(f"create database if not exists {spark_identifier(database)}").collect()
    if session.catalog.tableExists(f"{spark_identifier(database)}.{spark_identifier(name)}"):
        if _columns(session.table(table).schema) == _columns(schema):
            session.sql(f"alter table {table} set location {where}").collect()
            return
        session.sql(f"drop table {table}").collect()
    definition = ", ".join(
        f"{spark_identifier(column)} {kind}" for column, kind in _columns(schema)
    )
    session.sql(f"create table {table} ({definition}) using parquet location {where}").collect()


def drop_building(session: SparkSession) -> None:
    """Drop the `__building` databases (catalog entries only: every table is
    external, and its files go with their refresh's folder)."""
    for name in MANAGED_SCHEMAS:
        if _database_exists(session, name + BUILDING):
            session.sql(f"drop database {spark_identifier(name + BUILDING)} cascade").collect()


def _runs_in_use(session: SparkSession, settings: SparkSettings) -> set[str]:
    """The `data/<run>` folders the published tables read."""
    root = str(settings.data) + "/"
    runs = set()
    for database in MANAGED_SCHEMAS:
        for name in _table_names(session, database):
            where = urlparse(table_location(session, database, name)).path
            if where.startswith(root):
                runs.add(where[len(root) :].split("/", 1)[0])
    return runs


def prune_runs(settings: SparkSettings, keep: set[str]) -> None:
    """Remove the refresh folders under `data/` that are not in `keep`."""
    if not settings.data.is_dir():
        return
    for folder in settings.data.iterdir():
        if folder.is_dir() and folder.name not in keep:
            shutil.rmtree(folder, ignore_errors=True)


def publish(session: SparkSession, progress: Progress) -> list[str]:
    """Point every published table at the files of the `__building` one,
    drop the published tables the build does not have (e.g. `demo` after a
    refresh from exports, as a DuckDB refresh replaces the whole file), and
    drop the `__building` databases. Returns the published databases."""
    started = time.monotonic()
    published = []
    for name in MANAGED_SCHEMAS:
        building = name + BUILDING
        if not _database_exists(session, building):
            if _database_exists(session, name):
                session.sql(f"drop database {spark_identifier(name)} cascade").collect()
            continue
        new = _table_names(session, building)
        for table in new:
            schema = session.table(f"{spark_identifier(building)}.{spark_identifier(table)}").schema
            point_table(session, name, table, table_location(session, building, table), schema)
        for table in sorted(set(_table_names(session, name)) - set(new)):
            session.sql(f"drop table {spark_identifier(name)}.{spark_identifier(table)}").collect()
        published.append(name)
    progress(f"  published {', '.join(published)} in {time.monotonic() - started:.1f} s")
    drop_building(session)
    return published


# --------------------------------------------------------------------------- the refresh


def refresh_spark(options: RefreshOptions, monitor: Monitor) -> RefreshResult:
    """`hpd run --target spark`: the refresh of `hpd.refresh.refresh` on the
    Spark warehouse `options.spark_warehouse` (see the module docstring)."""
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
    settings = SparkSettings.from_env(options.spark_warehouse)
    reports = options.reports.resolve()
    reports.parent.mkdir(parents=True, exist_ok=True)
    staged_reports = reports.with_name(reports.name + ".building")
    shutil.rmtree(staged_reports, ignore_errors=True)
    work_dir = reports.parent / "spark.dbt"
    work_dir.mkdir(parents=True, exist_ok=True)
    monitor.use_work_dir(work_dir)
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    run_root = settings.data / run_id
    parquet_root = (options.parquet or reports.parent / "parquet").resolve()
    staged_parquet = parquet_root / f".building-{run_id}"
    quality: list[QualityResult] = []
    try:
        with refresh_lock(settings):
            progress(f"starting Spark ({settings.master}; warehouse {settings.warehouse})")
            warehouse = open_warehouse(settings, run_root, BUILDING)
            session = warehouse.session
            try:
                drop_building(session)
                previous = _runs_in_use(session, settings)
                with server_exports(
                    options,
                    work_dir,
                    quality,
                    staged_reports,
                    monitor,
                    functools.partial(_hand_exports, warehouse, monitor),
                ) as (exports_db, loaded):
                    nodes = build_warehouse(
                        options,
                        monitor,
                        work_dir,
                        {
                            **dbt_variables(options),
                            "schema_suffix": BUILDING,
                            "spark_location_root": str(run_root),
                        },
                        name_cause=lambda: _name_cause(warehouse),
                        target="spark",
                    )
                    data_docs = check_server_marts(
                        warehouse, exports_db, quality, staged_reports, reports, monitor
                    )
                with monitor.stage("statistics_report"):
                    progress("statistics, figures and report")
                    report = build_report(
                        warehouse, staged_reports, options.definition, settings.label
                    )
                marts = export_server_marts(warehouse, staged_parquet, monitor)
                with monitor.stage("publish"):
                    progress("publishing: pointing the published tables at the new files")
                    # An interrupt waits for the catalog updates.
                    with critical_section():
                        publish(session, progress)
                        monitor.published = True
            except BaseException:
                if not monitor.published:
                    with contextlib.suppress(Exception):
                        drop_building(session)
                    shutil.rmtree(run_root, ignore_errors=True)
                raise
            # The previous refresh's files stay for readers still on them.
            prune_runs(settings, {run_id, *previous})
        parquet = publish_parquet(staged_parquet, parquet_root, run_id)
        _publish_reports(staged_reports, reports)
    except BaseException:
        shutil.rmtree(staged_reports, ignore_errors=True)
        shutil.rmtree(staged_parquet, ignore_errors=True)
        raise
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
        target="spark",
        marts=marts,
    )


def _hand_exports(
    warehouse: SparkWarehouse,
    monitor: Monitor,
    exports_db: duckdb.DuckDBPyConnection,
    loaded: list[LoadedDomain],
) -> None:
    """Hand each checked `raw` table to Spark as a Parquet file."""
    monitor.progress(f"handing the exports to Spark (Parquet, {warehouse.label})")
    for domain in loaded:
        source = domain.file_name or f"{domain.domain}.csv"
        # In file order, so the Parquet file reads back as the export did.
        select = f"select * from raw.{domain.domain} order by _row_number"
        try:
            seen = warehouse.write_from_duckdb(exports_db, select, "raw", domain.domain)
        except Exception as error:
            raise DataError(
                f"{location(source)}: cannot be loaded into Spark: {_first_line(error)}"
            ) from error
        if seen != domain.rows:
            raise DataError(f"{location(source)}: Spark read {seen} rows of {domain.rows}")


def _name_cause(warehouse: SparkWarehouse) -> None:
    # If the build got as far as staging.
    with contextlib.suppress(_spark_error()):
        check_subjects_kept(warehouse)


def report_spark(spark_warehouse: Path | None, reports: Path, definition: str) -> Path:
    """`hpd report --target spark`: the statistics and the report from the
    published marts. `table1` and `survival_summary` are written as new
    files and their published tables pointed at them. Returns the report."""
    settings = SparkSettings.from_env(spark_warehouse)
    with refresh_lock(settings):
        run_id = datetime.now(UTC).strftime("report-%Y%m%dT%H%M%S%fZ")
        warehouse = open_warehouse(settings, settings.data / run_id)
        if not warehouse.tables("analytics"):
            raise UsageError(
                f"{settings.label}: no marts there; build them with `hpd run --target spark`"
            )
        known = definition_ids(warehouse)
        if definition not in known:
            raise UsageError(f"unknown definition {definition!r}; one of {', '.join(known)}")
        previous = _runs_in_use(warehouse.session, settings)
        try:
            result = build_report(warehouse, reports, definition, settings.label)
        except BaseException:
            shutil.rmtree(settings.data / run_id, ignore_errors=True)
            raise
        prune_runs(settings, {run_id, *previous})
    return result.html


def _spark_error() -> type[Exception]:
    from pyspark.errors import PySparkException

    return PySparkException


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__

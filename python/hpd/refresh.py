"""One refresh: load the exports, build the warehouse, publish it atomically.

The warehouse is built into a new file beside the published one and replaces
it (an atomic rename) only when the build and its blocking checks pass, so a
failed or interrupted refresh leaves the previous warehouse as it was.

`target="postgres"` refreshes a PostgreSQL warehouse instead, the same way
(new schemas renamed into place in one transaction): `hpd.postgres`; and
`target="spark"` a Spark warehouse (new tables, then each published table
pointed at its new files): `hpd.spark`.

A refresh goes through the stages of `hpd.runs.STAGES` (load,
quality_exports, dbt_build, quality_marts, statistics_report, outputs, docs,
publish), each timed with its peak memory by the `Monitor` it is given.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from hpd.blocking_checks import check_subjects_kept
from hpd.dbt_build import NodeCounter, build_failed, build_selection, failing_nodes, run_dbt
from hpd.errors import DataError, LockedError, UsageError
from hpd.loader import LoadedDomain, load_exports
from hpd.outputs import export_parquet, publish_parquet, serving_path, write_serving
from hpd.project import DEMO_DIR, limit_duckdb_memory
from hpd.quality import QualityResult, build_data_docs, validate_exports, validate_marts
from hpd.report import build_report
from hpd.runs import TARGETS, Monitor, critical_section, csv_rows, mart_counts
from hpd.warehouse import DuckDBWarehouse, PostgresWarehouse, SparkWarehouse

Progress = Callable[[str], None]


@dataclass
class RefreshOptions:
    warehouse: Path
    reports: Path
    exports: Path | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    unit_tests: bool = False
    definition: str = "tgkr"
    # Parquet copies of the marts (a folder per refresh and `latest`); by
    # default `parquet/` beside the warehouse.
    parquet: Path | None = None
    # `duckdb` (the file `warehouse`), `postgres` (the server named by the
    # HPD_PG_* variables) or `spark` (the folder `spark_warehouse`, else
    # HPD_SPARK_WAREHOUSE); `warehouse` is used by DuckDB only.
    target: str = "duckdb"
    spark_warehouse: Path | None = None
    # Stop dbt at the first failing model or test (dbt's --fail-fast).
    fail_fast: bool = False


@dataclass
class RefreshResult:
    warehouse: Path | str  # the file, or the PostgreSQL database's or Spark warehouse's address
    reports: Path
    loaded: list[LoadedDomain]
    nodes: int
    seconds: float
    report: Path
    data_docs: Path
    docs_site: Path | None  # None on PostgreSQL and Spark (not built there)
    serving: Path | None  # None on PostgreSQL and Spark: BI tools connect to the server
    parquet: Path
    quality: list[QualityResult]
    target: str = "duckdb"
    # Rows of each table of the published `analytics`.
    marts: dict[str, int] = field(default_factory=dict)

    @property
    def warnings(self) -> int:
        return sum(len(result.warnings) for result in self.quality)

    @property
    def blocking_failures(self) -> int:
        return sum(len(result.blocking_failures) for result in self.quality)


@contextlib.contextmanager
def file_lock(lock_path: Path, label: str) -> Iterator[None]:
    """Hold `lock_path` exclusively, or fail at once with LockedError (exit
    status 3) naming the warehouse `label`."""
    with lock_path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise LockedError(f"{label}: another refresh of this warehouse is running") from error
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def refresh_lock(warehouse: Path) -> contextlib.AbstractContextManager[None]:
    """One refresh of a warehouse at a time (exit status 3 for the second)."""
    return file_lock(warehouse.with_name(warehouse.name + ".lock"), str(warehouse))


def _remove(path: Path) -> None:
    """Remove a DuckDB file with its write-ahead log and the folder DuckDB
    spills to past its memory limit (left behind by a killed refresh)."""
    for candidate in (path, path.with_name(path.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            candidate.unlink()
    shutil.rmtree(path.with_name(path.name + ".tmp"), ignore_errors=True)


def dbt_variables(options: RefreshOptions) -> dict[str, Any]:
    return {**options.settings, "input": "exports" if options.exports else "demo"}


# DuckDB names a file's catalog after its stem; a stem equal to one of the
# warehouse's schemas makes `analytics.tumor_kinetics` ambiguous for readers.
RESERVED_NAMES = {
    "analytics",
    "analytics_deid",
    "staging",
    "intermediate",
    "raw",
    "demo",
    "reference",
    "main",
}


def check_warehouse_name(warehouse: Path) -> None:
    stem = warehouse.name.split(".")[0].lower()
    if stem in RESERVED_NAMES:
        raise UsageError(
            f"{warehouse}: a warehouse file may not be named after one of its schemas "
            f"({', '.join(sorted(RESERVED_NAMES))}); choose another name"
        )


def building_path(warehouse: Path) -> Path:
    """The new file a refresh builds in, beside the published one. DuckDB and
    dbt name the file's catalog after its stem, so the stem is kept to plain
    characters whatever the warehouse is called."""
    stem = re.sub(r"[^A-Za-z0-9_]", "_", warehouse.name.split(".")[0])
    return warehouse.with_name(f"hpd_build_{stem}.duckdb.building")


def refresh(
    options: RefreshOptions, progress: Progress = print, monitor: Monitor | None = None
) -> RefreshResult:
    """Refresh the warehouse of `options`. Progress lines go to `monitor`
    (which also times the stages), or else to `progress` as they are."""
    monitor = monitor or Monitor(progress)
    if options.target not in TARGETS:
        raise UsageError(f"unknown target {options.target!r}; one of {', '.join(TARGETS)}")
    if options.target == "postgres":
        from hpd.postgres import refresh_postgres

        return refresh_postgres(options, monitor)
    if options.target == "spark":
        from hpd.spark import refresh_spark

        return refresh_spark(options, monitor)
    progress = monitor.progress
    started = time.monotonic()
    warehouse = options.warehouse.resolve()
    check_warehouse_name(warehouse)
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    options.reports.resolve().parent.mkdir(parents=True, exist_ok=True)
    with refresh_lock(warehouse):
        building = building_path(warehouse)
        _remove(building)
        reports = options.reports.resolve()
        staged_reports = reports.with_name(reports.name + ".building")
        shutil.rmtree(staged_reports, ignore_errors=True)
        work_dir = warehouse.parent / (warehouse.name + ".dbt")
        monitor.use_work_dir(work_dir)
        run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        parquet_root = (options.parquet or warehouse.parent / "parquet").resolve()
        staged_parquet = parquet_root / f".building-{run_id}"
        serving = serving_path(warehouse)
        staged_serving = serving.with_name(serving.name + ".building")
        _remove(staged_serving)
        quality: list[QualityResult] = []
        try:
            loaded: list[LoadedDomain] = []
            if options.exports is not None:
                loaded = _load(options.exports, building, quality, staged_reports, reports, monitor)
            else:
                use_demo_cohort(monitor)
            nodes = build_warehouse(
                options,
                monitor,
                work_dir,
                dbt_variables(options),
                name_cause=lambda: _name_cause(building),
                building=building,
            )
            with limit_duckdb_memory(duckdb.connect(str(building))) as con:
                with monitor.stage("quality_marts"):
                    check_subjects_kept(con)
                    progress("data-quality checks on the marts (Great Expectations)")
                    quality.append(validate_marts(con))
                    _gate(quality, staged_reports, reports, progress)
                    data_docs = build_data_docs(quality, staged_reports)
                with monitor.stage("statistics_report"):
                    progress("statistics, figures and report")
                    report = build_report(con, staged_reports, options.definition, warehouse)
                with monitor.stage("outputs"):
                    progress("BI outputs: Parquet files and the serving file")
                    export_parquet(con, staged_parquet)
                    write_serving(con, staged_serving)
                    marts = mart_counts(DuckDBWarehouse(con))
                    con.execute("checkpoint")
            with monitor.stage("docs"):
                progress("documentation site (dbt docs)")
                docs_site = _docs_site(options, building, work_dir, staged_reports)
            with monitor.stage("publish"):
                progress("publishing the warehouse, the serving file, Parquet and reports")
                # An interrupt waits for the renames: never half published.
                with critical_section():
                    os.replace(building, warehouse)
                    _remove(building)  # only DuckDB's spill folder is left to remove
                    os.replace(staged_serving, serving)
                    parquet = publish_parquet(staged_parquet, parquet_root, run_id)
                    _publish_reports(staged_reports, reports)
                    monitor.published = True
        except BaseException:
            _remove(building)
            _remove(staged_serving)
            shutil.rmtree(staged_reports, ignore_errors=True)
            shutil.rmtree(staged_parquet, ignore_errors=True)
            raise
    return RefreshResult(
        warehouse=warehouse,
        reports=reports,
        loaded=loaded,
        nodes=nodes,
        seconds=time.monotonic() - started,
        report=reports / report.html.name,
        data_docs=reports / data_docs.relative_to(staged_reports),
        docs_site=reports / docs_site.relative_to(staged_reports),
        serving=serving,
        parquet=parquet,
        quality=quality,
        marts=marts,
    )


def fresh_file(path: Path) -> Path:
    """`path` with no DuckDB file, log or spill folder left there."""
    _remove(path)
    return path


def check_server_marts(
    warehouse: PostgresWarehouse | SparkWarehouse,
    exports_db: duckdb.DuckDBPyConnection | None,
    quality: list[QualityResult],
    staged_reports: Path,
    reports: Path,
    monitor: Monitor,
) -> Path:
    """The `quality_marts` stage of a PostgreSQL or Spark refresh (the marts
    checked on a DuckDB copy, beside the exports when there are any); the
    Data Docs' page."""
    with monitor.stage("quality_marts"):
        check_subjects_kept(warehouse)
        monitor.progress("data-quality checks on the marts (Great Expectations)")
        quality.append(validate_marts(warehouse, raw=exports_db))
        _gate(quality, staged_reports, reports, monitor.progress)
        return build_data_docs(quality, staged_reports)


def export_server_marts(
    warehouse: PostgresWarehouse | SparkWarehouse, staged_parquet: Path, monitor: Monitor
) -> dict[str, int]:
    """The `outputs` stage of a PostgreSQL or Spark refresh: Parquet copies of
    the marts (through a DuckDB copy); the marts' row counts."""
    with monitor.stage("outputs"):
        monitor.progress("BI outputs: Parquet files")
        with duckdb.connect() as mirror:
            warehouse.copy_to_duckdb(mirror, "analytics")
            export_parquet(mirror, staged_parquet)
            return mart_counts(DuckDBWarehouse(mirror))


def use_demo_cohort(monitor: Monitor) -> None:
    """A refresh of the bundled demo cohort: its subjects are the rows of its
    DM seed."""
    with contextlib.suppress(OSError):
        monitor.subjects = csv_rows(DEMO_DIR / "dm.csv")
    monitor.progress(f"using the bundled demo cohort ({monitor.subjects} subjects)")


def _docs_site(
    options: RefreshOptions, building: Path, work_dir: Path, staged_reports: Path
) -> Path:
    """`dbt docs generate --static`: one HTML file with every model, column and
    the lineage from the SDTM domains to the marts. `--no-compile`: the build
    has just compiled every node into the same target folder, and its parse
    state keeps the compiled SQL the site shows."""
    outcome = run_dbt(
        ["docs", "generate"],
        building,
        dbt_variables(options),
        work_dir,
        ["--static", "--no-compile"],
    )
    if not outcome.success:
        raise DataError(f"dbt docs generate failed; log: {work_dir / 'logs' / 'dbt.log'}")
    site = staged_reports / "docs" / "index.html"
    site.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(work_dir / "target" / "static_index.html", site)
    return site


def _load(
    exports: Path,
    building: Path,
    quality: list[QualityResult],
    staged_reports: Path,
    reports: Path,
    monitor: Monitor,
) -> list[LoadedDomain]:
    """Load the exports into `raw` and run the exports suite on them (a
    blocking failure stops the refresh here, before dbt)."""
    with limit_duckdb_memory(duckdb.connect(str(building))) as con:
        return load_and_check(con, exports, quality, staged_reports, reports, monitor)


def load_and_check(
    con: duckdb.DuckDBPyConnection,
    exports: Path,
    quality: list[QualityResult],
    staged_reports: Path,
    reports: Path,
    monitor: Monitor,
) -> list[LoadedDomain]:
    """The `load` and `quality_exports` stages on the DuckDB database behind
    `con` (the building file, or the PostgreSQL refresh's scratch file)."""
    progress = monitor.progress
    with monitor.stage("load"):
        progress(f"loading exports from {exports}")
        loaded = load_exports(con, exports)
        record_loaded(monitor, loaded)
        for domain in loaded:
            source = domain.file_name or "no file"
            progress(f"  {domain.domain}: {domain.rows} rows ({source})")
        progress(f"  {monitor.subjects} subjects (DM rows)")
    with monitor.stage("quality_exports"):
        progress("data-quality checks on the exports (Great Expectations)")
        quality.append(validate_exports(con))
        _gate(quality, staged_reports, reports, progress)
    return loaded


@contextlib.contextmanager
def server_exports(
    options: RefreshOptions,
    work_dir: Path,
    quality: list[QualityResult],
    staged_reports: Path,
    monitor: Monitor,
    copy: Callable[[duckdb.DuckDBPyConnection, list[LoadedDomain]], None],
) -> Iterator[tuple[duckdb.DuckDBPyConnection | None, list[LoadedDomain]]]:
    """The input of a PostgreSQL or Spark refresh: the exports read and
    checked in a local DuckDB file as a DuckDB refresh does (`load`,
    `quality_exports`), then handed to the server by `copy` (stage `copy`);
    or the demo cohort, which the build reads from its seeds. Yields the
    DuckDB connection (None for the demo), open for the marts' checks, and
    the loaded domains."""
    if options.exports is None:
        use_demo_cohort(monitor)
        yield None, []
        return
    with duckdb.connect(str(fresh_file(work_dir / "exports.duckdb"))) as exports_db:
        loaded = load_and_check(
            exports_db, options.exports, quality, staged_reports, options.reports.resolve(), monitor
        )
        with monitor.stage("copy"):
            copy(exports_db, loaded)
        yield exports_db, loaded


def record_loaded(monitor: Monitor, loaded: list[LoadedDomain]) -> None:
    """Rows per domain, and the subjects (DM rows), for progress and the run record."""
    monitor.rows = {domain.domain: domain.rows for domain in loaded}
    monitor.subjects = monitor.rows.get("dm")


def _gate(
    quality: list[QualityResult], staged_reports: Path, reports: Path, progress: Progress
) -> None:
    """Report the warnings of the last suite; stop on a blocking failure, keeping
    its Data Docs beside the published reports (`<reports>.failed`)."""
    result = quality[-1]
    for warning in result.warnings:
        progress(f"  warning: {warning}")
    if result.success:
        return
    failed = reports.with_name(reports.name + ".failed")
    shutil.rmtree(failed, ignore_errors=True)
    docs = build_data_docs(quality, failed)
    progress(f"data docs of the failed refresh: {docs}")
    result.raise_for_blocking()


def build_progress(monitor: Monitor, counter: NodeCounter) -> str:
    """The periodic line of a running dbt build."""
    subjects = f"; {monitor.subjects} subjects" if monitor.subjects is not None else ""
    return f"  dbt build: {counter.describe()}{subjects}"


def build_warehouse(
    options: RefreshOptions,
    monitor: Monitor,
    work_dir: Path,
    variables: dict[str, Any],
    name_cause: Callable[[], None],
    building: Path | None = None,
    target: str | None = None,
) -> int:
    """The `dbt_build` stage of every target: dbt build (models, seeds and
    data tests) into `building`, a DuckDB refresh's new file, or into the
    `target` output of profiles.yml. When the build fails, `name_cause`
    raises the DataError of a cause its failing nodes would hide, if it is
    one: a rejected DM row also fails the relationship tests."""
    progress = monitor.progress
    with monitor.stage("dbt_build"):
        command = f"dbt build --target {target}" if target else "dbt build"
        progress(f"building the warehouse ({command}: models and data tests)")
        counter = NodeCounter()
        try:
            with monitor.ticker(lambda: build_progress(monitor, counter)):
                outcome = run_dbt(
                    "build",
                    building or work_dir / "unused.duckdb",
                    variables,
                    work_dir,
                    build_selection(
                        options.unit_tests, options.exports is not None, options.fail_fast
                    ),
                    on_node=failing_nodes(progress),
                    target=target,
                    counter=counter,
                )
        finally:
            monitor.keep_dbt_results()
        if not outcome.success:
            name_cause()
            raise build_failed(outcome, work_dir)
        progress(f"  {outcome.nodes} models, seeds and tests passed")
        return outcome.nodes


def _name_cause(building: Path) -> None:
    with (
        limit_duckdb_memory(duckdb.connect(str(building))) as con,
        contextlib.suppress(duckdb.Error),
    ):
        check_subjects_kept(con)


def _publish_reports(staged: Path, reports: Path) -> None:
    """Swap the new reports folder in for the old one."""
    previous = reports.with_name(reports.name + ".previous")
    shutil.rmtree(previous, ignore_errors=True)
    if reports.exists():
        reports.rename(previous)
    staged.rename(reports)
    shutil.rmtree(previous, ignore_errors=True)

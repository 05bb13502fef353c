"""The `hpd` command (SPEC §7).

Exit status: 0 success, 1 the data failed a blocking check, 2 a usage or
configuration error, 3 another refresh of the same warehouse is running;
130 (Ctrl-C) or 143 (SIGTERM) for a refresh that was stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from hpd import synth
from hpd.errors import EXIT_DATA, EXIT_LOCKED, EXIT_OK, EXIT_USAGE, HpdError, UsageError
from hpd.runs import (
    EXIT_SIGINT,
    EXIT_SIGTERM,
    TARGETS,
    RunRecord,
    StopSignals,
    Terminated,
    read_runs,
)
from hpd.settings import READERS, resolve_settings

# dbt, Great Expectations, pandas and matplotlib are imported where they are
# used, so that `hpd status` (a monitoring check) starts in a moment.
if TYPE_CHECKING:
    from hpd.refresh import RefreshResult
    from hpd.warehouse import Warehouse

DEFAULT_WAREHOUSE = Path("build/warehouse.duckdb")
DEFAULT_REPORTS = Path("build/reports")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"hpd: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hpd", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="refresh a warehouse from SDTM exports (or the demo)")
    run.add_argument(
        "--exports",
        type=Path,
        help="folder of SDTM exports (dm, ex, tu, tr and optionally ds, qs, sc as .csv or "
        ".parquet); without it, the bundled demo cohort",
    )
    run.add_argument("--warehouse", type=Path, default=DEFAULT_WAREHOUSE, help="DuckDB file")
    run.add_argument("--reports", type=Path, default=DEFAULT_REPORTS, help="reports folder")
    run.add_argument(
        "--target",
        choices=TARGETS,
        default="duckdb",
        help="where the warehouse is: the DuckDB file --warehouse (default), the PostgreSQL "
        "server of the HPD_PG_* environment variables (README, PostgreSQL) or the Spark "
        "warehouse --spark-warehouse (README, Spark)",
    )
    run.add_argument(
        "--spark-warehouse",
        type=Path,
        help="with --target spark: the Spark warehouse folder (catalog and Parquet files; "
        "default HPD_SPARK_WAREHOUSE, else build/spark-warehouse)",
    )
    run.add_argument(
        "--parquet", type=Path, help="folder for Parquet copies of the marts (parquet/ beside it)"
    )
    run.add_argument("--reader", choices=READERS, help="which read of the scans to use")
    run.add_argument("--config", type=Path, help="TOML file with a [settings] table")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one setting (repeatable), e.g. --set tgkr_min_ratio=1.5",
    )
    run.add_argument(
        "--unit-tests", action="store_true", help="also run the dbt unit tests of the models"
    )
    run.add_argument(
        "--definition",
        default="tgkr",
        help="the hyperprogression definition Table 1 and survival compare (default: tgkr)",
    )
    run.add_argument(
        "--fail-fast",
        action="store_true",
        help="stop the dbt build at the first failing model or test (dbt --fail-fast)",
    )
    run.add_argument(
        "--runs",
        type=Path,
        help="folder of run records (default: runs/ beside the warehouse; for --target "
        "postgres, runs/ beside the reports folder)",
    )
    run.add_argument(
        "--progress-every",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="during the dbt build, a progress line every SECONDS (default 10; 0: none)",
    )

    status = commands.add_parser(
        "status",
        help="the last refreshes from their run records; exit 0 if the latest succeeded, "
        "1 if not, 2 if there is none",
    )
    where = status.add_mutually_exclusive_group()
    where.add_argument(
        "--warehouse",
        type=Path,
        default=DEFAULT_WAREHOUSE,
        help="the refreshes of this DuckDB file (runs/ beside it)",
    )
    where.add_argument("--runs", type=Path, help="every refresh recorded in this runs folder")
    status.add_argument("--last", type=int, default=10, metavar="N", help="runs shown (10)")
    status.add_argument("--json", action="store_true", help="the run records as JSON")

    report = commands.add_parser(
        "report", help="rebuild the statistics and the HTML report from an existing warehouse"
    )
    report.add_argument("--warehouse", type=Path, default=DEFAULT_WAREHOUSE, help="DuckDB file")
    report.add_argument("--reports", type=Path, default=DEFAULT_REPORTS, help="reports folder")
    report.add_argument("--definition", default="tgkr", help="definition to compare (tgkr)")
    report.add_argument(
        "--target", choices=TARGETS, default="duckdb", help="duckdb (default), postgres or spark"
    )
    report.add_argument(
        "--spark-warehouse", type=Path, help="with --target spark: the Spark warehouse folder"
    )

    setup = commands.add_parser(
        "pg-setup",
        help="prepare a PostgreSQL server once: the database (collation C) and the "
        "read-only analyst role (HPD_PG_* variables)",
    )
    setup.add_argument(
        "--login",
        action="store_true",
        help="let the analyst role log in itself (password from HPD_PG_ANALYST_PASSWORD)",
    )
    setup.add_argument(
        "--member",
        action="append",
        default=[],
        metavar="USER",
        help="grant the analyst role to an existing login user (repeatable)",
    )

    synth_parser = commands.add_parser(
        "synth", help="write a synthetic SDTM cohort (for scale tests and benchmarks)"
    )
    synth.build_parser(synth_parser)
    return parser


def _counts(warehouse: Warehouse) -> tuple[list[tuple[str, int]], int, int]:
    attrition = [
        (str(status), int(n))
        for status, n in warehouse.rows(
            f"select status, n from {warehouse.table('analytics', 'cohort_attrition')} "
            "order by step"
        )
    ]
    hpd = warehouse.rows(
        f"select count(*) from {warehouse.table('analytics', 'tumor_kinetics')} where hpd"
    )
    rejected = warehouse.rows(
        f"select count(*) from {warehouse.table('analytics', 'rejected_rows')}"
    )
    return attrition, int(hpd[0][0]) if hpd else 0, int(rejected[0][0]) if rejected else 0


def _summary(result: RefreshResult, spark_warehouse: Path | None = None) -> list[str]:
    from hpd.warehouse import DuckDBWarehouse, PostgresWarehouse

    if result.target == "spark":
        from hpd.spark import SparkSettings, open_warehouse

        attrition, hpd, rejected = _counts(open_warehouse(SparkSettings.from_env(spark_warehouse)))
    elif result.target == "postgres":
        published = PostgresWarehouse.connect()
        try:
            attrition, hpd, rejected = _counts(published)
        finally:
            published.close()
    else:
        with duckdb.connect(str(result.warehouse), read_only=True) as con:
            attrition, hpd, rejected = _counts(DuckDBWarehouse(con))
    treated = sum(n for _, n in attrition)
    evaluable = dict(attrition).get("evaluable", 0)
    lines = [
        f"treated subjects: {treated}; evaluable: {evaluable}; "
        f"hyperprogression (TGKR): {hpd}; rejected rows: {rejected}",
        f"data quality: {result.blocking_failures} blocking failures, "
        f"{result.warnings} warnings; data docs: {result.data_docs}",
        f"warehouse: {result.warehouse}",
    ]
    if result.serving is not None:
        lines.append(f"serving:   {result.serving} (read-only copy of the marts for BI tools)")
    lines.append(f"parquet:   {result.parquet}")
    if result.docs_site is not None:
        lines.append(f"docs:      {result.docs_site}")
    lines.append(f"report:    {result.report}")
    return lines


def _runs_dir(args: argparse.Namespace) -> Path:
    if args.runs is not None:
        return Path(args.runs)
    if args.target in ("postgres", "spark"):
        # Beside the reports folder, with postgres.dbt/ (spark.dbt/) and parquet/.
        return Path(args.reports).resolve().parent / "runs"
    return Path(args.warehouse).resolve().parent / "runs"


def _warehouse_label(args: argparse.Namespace) -> str:
    if args.target == "postgres":
        from hpd.warehouse import PostgresSettings

        try:
            return PostgresSettings.from_env().label
        except ValueError as error:
            raise UsageError(f"HPD_PG_PORT: not a port number ({error})") from error
    if args.target == "spark":
        from hpd.spark import SparkSettings

        return SparkSettings.from_env(args.spark_warehouse).label
    return str(Path(args.warehouse).resolve())


def _failure(error: BaseException, published: bool = False) -> tuple[int, str, str] | None:
    """Exit status, run status and one-line message of an error the command
    reports itself; None for anything else (a bug: Python's traceback)."""
    if isinstance(error, KeyboardInterrupt):
        name, code = (
            ("SIGTERM", EXIT_SIGTERM) if isinstance(error, Terminated) else ("", EXIT_SIGINT)
        )
        stopped = f"interrupted ({name})" if name else "interrupted"
        if published:
            return code, "interrupted", f"hpd: {stopped} after the new warehouse was published"
        return code, "interrupted", f"hpd: {stopped}; the published warehouse is unchanged"
    if isinstance(error, HpdError):
        status = {EXIT_DATA: "failed", EXIT_LOCKED: "locked"}.get(error.exit_status, "error")
        return error.exit_status, status, f"hpd: error: {error}"
    engine = {"psycopg2": "PostgreSQL", "pyspark": "Spark", "py4j": "Spark"}.get(
        type(error).__module__.split(".")[0]
    )
    if engine is not None:
        # The PostgreSQL server or Spark refused a connection or a statement.
        lines = str(error).strip().splitlines()
        return EXIT_USAGE, "error", f"hpd: error: {engine}: {lines[0] if lines else error}"
    return None


def _run(args: argparse.Namespace) -> int:
    """`hpd run`: the refresh, with its run record whatever the outcome."""
    from hpd.refresh import RefreshOptions, refresh

    runs_dir = _runs_dir(args)
    try:
        record = RunRecord(
            runs_dir,
            target=args.target,
            warehouse=_warehouse_label(args),
            exports=str(args.exports.resolve()) if args.exports is not None else None,
            progress_every=args.progress_every,
        )
    except OSError as error:
        raise UsageError(f"{runs_dir}: cannot write the run record: {error}") from error
    monitor = record.monitor
    with StopSignals() as signals:
        try:
            settings = resolve_settings(args.config, args.set, args.reader)
            record.settings = settings
            options = RefreshOptions(
                warehouse=args.warehouse,
                reports=args.reports,
                exports=args.exports,
                settings=settings,
                unit_tests=args.unit_tests,
                definition=args.definition,
                parquet=args.parquet,
                target=args.target,
                spark_warehouse=args.spark_warehouse,
                fail_fast=args.fail_fast,
            )
            result = refresh(options, monitor=monitor)
            record.marts = result.marts
            monitor.progress(f"refresh finished in {result.seconds:.1f} s")
            for line in _summary(result, args.spark_warehouse):
                monitor.progress(line)
            # The refresh is done: a signal from here on is only noted.
            signals.disarm()
            record.finish("success", EXIT_OK, None)
            return EXIT_OK
        except BaseException as error:
            signals.disarm()
            failure = _failure(error, monitor.published)
            if failure is None:
                first = (str(error).strip().splitlines() or [""])[0]
                record.finish("error", EXIT_DATA, f"{type(error).__name__}: {first}")
                raise
            code, status, message = failure
            record.error(message)
            record.finish(status, code, message.removeprefix("hpd: error: ").removeprefix("hpd: "))
            return code


def _status(args: argparse.Namespace) -> int:
    """`hpd status`: the last runs, newest first, and the latest one's stages.
    Exit 0 if the latest finished run succeeded, 1 if not, 2 if there is none."""
    if args.last < 1:
        raise UsageError("--last must be at least 1")
    if args.runs is not None:
        runs_dir, warehouse = Path(args.runs), None
    else:
        warehouse = Path(args.warehouse).resolve()
        runs_dir = warehouse.parent / "runs"
    records = read_runs(runs_dir, str(warehouse) if warehouse is not None else None)
    finished = [r for r in records if r.get("status") != "running"]
    code = 2 if not finished else (EXIT_OK if finished[0].get("status") == "success" else 1)
    shown = records[: args.last]
    if args.json:
        print(json.dumps(shown, indent=2))
        return code
    if not records:
        print(f"hpd: no run records in {runs_dir}" + (f" for {warehouse}" if warehouse else ""))
        return code
    for line in _status_table(shown):
        print(line)
    latest = finished[0] if finished else records[0]
    print()
    print(f"run {latest['run_id']} ({runs_dir / str(latest['run_id'])}):")
    for line in _stages_table(latest):
        print(line)
    return code


def _short(text: str | None, width: int = 70) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _status_table(records: list[dict[str, Any]]) -> list[str]:
    rows = [("run id", "started (UTC)", "seconds", "status", "exit", "subjects", "message")]
    for r in records:
        started = str(r.get("started_at") or "")[:19].replace("T", " ")
        seconds = r.get("seconds")
        rows.append(
            (
                str(r.get("run_id", "")),
                started,
                f"{seconds:.1f}" if isinstance(seconds, int | float) else "-",
                str(r.get("status", "")),
                "-" if r.get("exit_code") is None else str(r["exit_code"]),
                "-" if r.get("subjects") is None else str(r["subjects"]),
                _short(r.get("message")),
            )
        )
    return _align(rows, right={2, 4, 5})


def _stages_table(record: dict[str, Any]) -> list[str]:
    stages = record.get("stages") or []
    if not stages:
        return ["  (no stage was reached)"]
    rows = [("stage", "seconds", "peak memory")]
    for stage in stages:
        rows.append(
            (
                str(stage.get("name", "")),
                f"{float(stage.get('seconds') or 0):.1f}",
                f"{int(stage.get('peak_rss_bytes') or 0) / 2**20:.0f} MiB",
            )
        )
    peak = record.get("peak_rss_bytes")
    if isinstance(peak, int):
        rows.append(
            ("(run)", f"{float(record.get('seconds') or 0):.1f}", f"{peak / 2**20:.0f} MiB")
        )
    return ["  " + line for line in _align(rows, right={1, 2})]


def _align(rows: Sequence[tuple[str, ...]], right: set[int]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def _check_definition(warehouse: Warehouse, definition: str) -> None:
    definitions = [
        str(row[0])
        for row in warehouse.rows(
            f"select definition_id from {warehouse.table('analytics', 'hpd_definitions')} "
            "order by definition_order"
        )
    ]
    if definition not in definitions:
        raise UsageError(f"unknown definition {definition!r}; one of {', '.join(definitions)}")


def _report_postgres(args: argparse.Namespace) -> int:
    """`hpd report --target postgres`: statistics from the published marts,
    written back into `analytics` in one transaction."""
    from hpd.report import build_report
    from hpd.warehouse import PostgresSettings, PostgresWarehouse

    settings = PostgresSettings.from_env()
    warehouse = PostgresWarehouse.connect(settings, analyst_role=settings.analyst_role)
    try:
        _check_definition(warehouse, args.definition)
        result = build_report(warehouse, args.reports.resolve(), args.definition, settings.label)
        warehouse.commit()
    finally:
        warehouse.close()
    print(f"hpd: report: {result.html}")
    return EXIT_OK


def _pg_setup(args: argparse.Namespace) -> int:
    import os

    from hpd.postgres import pg_setup
    from hpd.warehouse import PostgresSettings

    settings = PostgresSettings.from_env()
    pg_setup(
        settings,
        login=args.login,
        password=os.environ.get("HPD_PG_ANALYST_PASSWORD"),
        members=tuple(args.member),
        progress=lambda line: print(f"hpd: {line}", flush=True),
    )
    print(f"hpd: {settings.label} is ready; analyst role: {settings.analyst_role}")
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    if args.target == "postgres":
        return _report_postgres(args)
    if args.target == "spark":
        from hpd.spark import report_spark

        html = report_spark(args.spark_warehouse, args.reports.resolve(), args.definition)
        print(f"hpd: report: {html}")
        return EXIT_OK
    from hpd.refresh import refresh_lock
    from hpd.report import build_report

    warehouse = args.warehouse.resolve()
    if not warehouse.is_file():
        raise UsageError(f"{warehouse}: no warehouse there; build one with `hpd run`")
    with refresh_lock(warehouse), duckdb.connect(str(warehouse)) as con:
        definitions = [
            row[0]
            for row in con.execute(
                "select definition_id from analytics.hpd_definitions order by definition_order"
            ).fetchall()
        ]
        if args.definition not in definitions:
            raise UsageError(
                f"unknown definition {args.definition!r}; one of {', '.join(definitions)}"
            )
        result = build_report(con, args.reports.resolve(), args.definition, warehouse)
    print(f"hpd: report: {result.html}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "status":
            return _status(args)
        if args.command == "report":
            return _report(args)
        if args.command == "pg-setup":
            return _pg_setup(args)
        if args.command == "synth":
            try:
                summary = synth.run(args)
            except ValueError as error:
                raise UsageError(str(error)) from error
            print(summary.describe())
            return EXIT_OK
    except BaseException as error:
        failure = _failure(error)
        if failure is None:
            raise
        code, _, message = failure
        print(message, file=sys.stderr)
        return code
    return EXIT_USAGE

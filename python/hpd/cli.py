"""The `hpd` command (SPEC §7).

Exit status: 0 success, 1 the data failed a blocking check, 2 a usage or
configuration error, 3 another refresh of the same warehouse is running.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb

from hpd import synth
from hpd.errors import EXIT_OK, EXIT_USAGE, HpdError, UsageError
from hpd.refresh import TARGETS, RefreshOptions, RefreshResult, refresh, refresh_lock
from hpd.report import build_report
from hpd.settings import READERS, resolve_settings
from hpd.warehouse import DuckDBWarehouse, PostgresSettings, PostgresWarehouse, Warehouse

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


def _run(args: argparse.Namespace) -> int:
    settings = resolve_settings(args.config, args.set, args.reader)
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
    )
    result = refresh(options, progress=lambda line: print(f"hpd: {line}", flush=True))
    print(f"hpd: refresh finished in {result.seconds:.1f} s")
    for line in _summary(result, args.spark_warehouse):
        print(f"hpd: {line}")
    return EXIT_OK


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
    except HpdError as error:
        print(f"hpd: error: {error}", file=sys.stderr)
        return error.exit_status
    except Exception as error:
        engine = {"psycopg2": "PostgreSQL", "pyspark": "Spark", "py4j": "Spark"}.get(
            type(error).__module__.split(".")[0]
        )
        if engine is None:
            raise
        # The PostgreSQL server or Spark refused a connection or a statement.
        lines = str(error).strip().splitlines()
        print(f"hpd: error: {engine}: {lines[0] if lines else error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("hpd: interrupted; the published warehouse is unchanged", file=sys.stderr)
        return 130
    return EXIT_USAGE

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
from hpd.refresh import RefreshOptions, RefreshResult, refresh, refresh_lock
from hpd.report import build_report
from hpd.settings import READERS, resolve_settings

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

    synth_parser = commands.add_parser(
        "synth", help="write a synthetic SDTM cohort (for scale tests and benchmarks)"
    )
    synth.build_parser(synth_parser)
    return parser


def _summary(result: RefreshResult) -> list[str]:
    with duckdb.connect(str(result.warehouse), read_only=True) as con:
        attrition = con.execute(
            "select status, n from analytics.cohort_attrition order by step"
        ).fetchall()
        treated = sum(int(n) for _, n in attrition)
        hpd = con.execute("select count(*) from analytics.tumor_kinetics where hpd").fetchone()
        rejected = con.execute("select count(*) from analytics.rejected_rows").fetchone()
    evaluable = dict(attrition).get("evaluable", 0)
    return [
        f"treated subjects: {treated}; evaluable: {evaluable}; "
        f"hyperprogression (TGKR): {hpd[0] if hpd else 0}; "
        f"rejected rows: {rejected[0] if rejected else 0}",
        f"data quality: {result.blocking_failures} blocking failures, "
        f"{result.warnings} warnings; data docs: {result.data_docs}",
        f"warehouse: {result.warehouse}",
        f"report:    {result.report}",
    ]


def _run(args: argparse.Namespace) -> int:
    settings = resolve_settings(args.config, args.set, args.reader)
    options = RefreshOptions(
        warehouse=args.warehouse,
        reports=args.reports,
        exports=args.exports,
        settings=settings,
        unit_tests=args.unit_tests,
        definition=args.definition,
    )
    result = refresh(options, progress=lambda line: print(f"hpd: {line}", flush=True))
    print(f"hpd: refresh finished in {result.seconds:.1f} s")
    for line in _summary(result):
        print(f"hpd: {line}")
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
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
    except KeyboardInterrupt:
        print("hpd: interrupted; the published warehouse is unchanged", file=sys.stderr)
        return 130
    return EXIT_USAGE

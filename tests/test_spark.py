"""The same warehouse on Apache Spark (local session, dbt-spark): every
model, seed, unit and data test builds and passes there, every mart holds
the same rows and values as on DuckDB, exports reach Spark as Parquet files,
and a failed refresh leaves the published tables as they were.

One Spark session serves the whole file (`hpd` runs in this process; all
Spark tests are here, so pytest-xdist's `--dist loadfile` keeps them on one
worker). The demo build runs dbt's unit and data tests; the generated
cohort's build leaves the data tests out to keep the suite short (the same
tests on the same models, already passed on the demo). Both use the settings
for small cohorts (spark-small.conf).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from conftest import REPO, apt_install, exports_with_a_dm_row_rejected
from hpd import cli, synth
from hpd.dbt_build import BuildOutcome
from hpd.loader import load_exports
from hpd.report import read_marts
from hpd.spark import SparkSettings, open_warehouse, stop_session, table_location
from hpd.warehouse import DuckDBWarehouse
from mart_comparison import (
    MART_SCHEMAS,
    RELATIVE_TOLERANCE,
    Tables,
    duckdb_tables,
    plain_value,
    table_differences,
)

JAVA_PACKAGE = "openjdk-17-jre-headless"
BAD_EXPORTS = REPO / "tests" / "data" / "bad_exports"


# --------------------------------------------------------------------------- running hpd


@dataclass(frozen=True)
class Done:
    returncode: int
    stdout: str
    stderr: str


def hpd_inline(*args: str | Path) -> Done:
    """`hpd ARGS` in this process, so every run shares the one JVM."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(arg) for arg in args])
    return Done(code, out.getvalue(), err.getvalue())


def _ensure_java() -> None:
    """Java for Spark, installed from Debian's packages when missing."""
    if shutil.which("java") or os.environ.get("JAVA_HOME"):
        return
    apt_install(JAVA_PACKAGE, "Spark needs Java 17, which is missing")


@pytest.fixture(scope="module")
def spark_env() -> Iterator[None]:
    """Java, the small-cohort settings, and the session stopped at the end."""
    _ensure_java()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HPD_SPARK_CONF", str(REPO / "spark-small.conf"))
        patch.delenv("HPD_SPARK_WAREHOUSE", raising=False)
        try:
            yield
        finally:
            stop_session()


def spark_tables(folder: Path, schema: str) -> Tables:
    warehouse = open_warehouse(SparkSettings.from_env(folder))
    tables = {}
    for name in warehouse.tables(schema):
        result = warehouse.session.sql(f"select * from {warehouse.table(schema, name)}")
        rows = [tuple(plain_value(v) for v in row) for row in result.collect()]
        tables[name] = (list(result.columns), rows)
    return tables


def mart_differences(duck: Path, spark: dict[str, Tables]) -> list[str]:
    problems: list[str] = []
    for schema in MART_SCHEMAS:
        problems += table_differences(schema, duckdb_tables(duck, schema), spark[schema], "Spark")
    return problems


@dataclass(frozen=True)
class Build:
    warehouse: Path  # the Spark warehouse folder
    reports: Path
    done: Done
    marts: dict[str, Tables]  # as published, read right after the build
    duckdb: Path | None = None  # the DuckDB warehouse of the same exports
    exports: Path | None = None

    @property
    def run_results(self) -> dict[str, Any]:
        path = self.reports.parent / "spark.dbt" / "target" / "run_results.json"
        return dict(json.loads(path.read_text(encoding="utf-8")))


def _snapshot(folder: Path) -> dict[str, Tables]:
    return {schema: spark_tables(folder, schema) for schema in MART_SCHEMAS}


@pytest.fixture(scope="module")
def spark_demo(spark_env: None, tmp_path_factory: pytest.TempPathFactory) -> Build:
    """The demo cohort refreshed on Spark, with dbt's unit and data tests."""
    folder = tmp_path_factory.mktemp("spark_demo")
    warehouse, reports = folder / "warehouse", folder / "reports"
    done = hpd_inline(
        "run", "--target", "spark", "--unit-tests", "--spark-warehouse", warehouse,
        "--reports", reports,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return Build(warehouse, reports, done, _snapshot(warehouse))


@pytest.fixture(scope="module")
def spark_generated(spark_env: None, tmp_path_factory: pytest.TempPathFactory) -> Build:
    """A generated cohort (300 subjects, seed 3) refreshed on Spark and, at
    the same time in another process, on DuckDB."""
    folder = tmp_path_factory.mktemp("spark_generated")
    exports = folder / "exports"
    synth.generate(300, exports, seed=3)
    duck = folder / "duck" / "warehouse.duckdb"
    on_duckdb = subprocess.Popen(
        [sys.executable, "-m", "hpd", "run", "--exports", str(exports), "--warehouse", str(duck),
         "--reports", str(folder / "duck" / "reports")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    warehouse, reports = folder / "warehouse", folder / "spark" / "reports"
    with pytest.MonkeyPatch.context() as patch:
        # Data tests ran on the demo build; models only here.
        patch.setattr(
            "hpd.refresh.build_selection",
            lambda unit_tests, from_exports, fail_fast=False: [
                "--exclude-resource-type", "unit_test", "test", "--exclude", "path:seeds/demo",
            ],
        )  # fmt: skip
        done = hpd_inline(
            "run", "--target", "spark", "--exports", exports, "--spark-warehouse", warehouse,
            "--reports", reports,
        )  # fmt: skip
    duck_output, _ = on_duckdb.communicate(timeout=900)
    assert on_duckdb.returncode == 0, duck_output
    assert done.returncode == 0, done.stdout + done.stderr
    return Build(warehouse, reports, done, _snapshot(warehouse), duck, exports)


# --------------------------------------------------------------------------- same answers


def test_demo_cohort_marts_are_the_same_on_spark(spark_demo: Build, demo_warehouse: Path) -> None:
    assert mart_differences(demo_warehouse, spark_demo.marts) == []
    columns, rows = spark_demo.marts["analytics"]["cohort_attrition"]
    counts = {row[columns.index("status")]: row[columns.index("n")] for row in rows}
    # The paper's flowchart, as on DuckDB.
    assert counts == {
        "no_baseline_scan": 0,
        "no_first_evaluation": 8,
        "no_pre_baseline_scan": 12,
        "incomplete_measurements": 0,
        "evaluable": 25,
    }
    assert {"table1", "survival_summary"} <= set(spark_demo.marts["analytics"])


def test_dbt_unit_and_data_tests_pass_on_spark(spark_demo: Build) -> None:
    results = spark_demo.run_results["results"]
    kinds: dict[str, set[str]] = {}
    for result in results:
        kinds.setdefault(result["unique_id"].split(".")[0], set()).add(result["status"])
    assert kinds["unit_test"] == {"pass"}
    assert kinds["test"] == {"pass"}
    assert kinds["model"] == kinds["seed"] == {"success"}
    assert sum(r["unique_id"].startswith("unit_test.") for r in results) >= 40
    assert "models, seeds and tests passed" in spark_demo.done.stdout


def test_marts_contract_rules_are_checked_on_spark(spark_demo: Build) -> None:
    """Spark does not enforce the marts' contract constraints; a data test per
    mart checks them there, and it finds a row that breaks one."""
    checked = [
        r
        for r in spark_demo.run_results["results"]
        if ".contract_constraints_hold_" in r["unique_id"]
    ]
    assert len(checked) == 13, checked
    assert {r["status"] for r in checked} == {"pass"}
    compiled = next(
        (spark_demo.reports.parent / "spark.dbt" / "target" / "compiled").rglob(
            "contract_constraints_hold_tumor_kinetics_.sql"
        )
    ).read_text(encoding="utf-8")
    match = re.search(r"from (\S+) as checked", compiled)
    assert match is not None, compiled
    session = open_warehouse(SparkSettings.from_env(spark_demo.warehouse)).session
    row = session.sql(
        "select * from analytics.tumor_kinetics where evaluability = 'evaluable' and tgk_pre > 0 limit 1"
    )
    row.withColumn("tgk_pre", row["tgk_pre"] + 1).createOrReplaceTempView("broken_kinetics")
    found = session.sql(compiled.replace(match.group(1), "broken_kinetics")).collect()
    assert [r["broken_rule"] for r in found] == ["tumor_kinetics_tgk_formulas"]


def test_generated_cohort_marts_are_the_same_on_spark(spark_generated: Build) -> None:
    assert spark_generated.duckdb is not None
    assert mart_differences(spark_generated.duckdb, spark_generated.marts) == []
    assert len(spark_generated.marts["analytics"]["tumor_kinetics"][1]) > 250


def test_report_reads_the_same_frames_from_spark_and_duckdb(spark_generated: Build) -> None:
    """read_marts through the Warehouse interface: same frames, same dtypes."""
    from_spark = read_marts(open_warehouse(SparkSettings.from_env(spark_generated.warehouse)))
    with duckdb.connect(str(spark_generated.duckdb), read_only=True) as con:
        from_duckdb = read_marts(DuckDBWarehouse(con))
    for field in ("attrition", "definitions", "definition_summary", "agreement", "kinetics",
                  "evaluable", "survival"):  # fmt: skip
        ours, theirs = getattr(from_duckdb, field), getattr(from_spark, field)
        pd.testing.assert_frame_equal(ours, theirs, check_exact=False, rtol=RELATIVE_TOLERANCE)


# --------------------------------------------------------------------------- tables and files


def _describe(warehouse: Any, database: str, name: str) -> dict[str, str]:
    rows = warehouse.session.sql(f"describe table extended {database}.`{name}`").collect()
    return {str(row[0]): str(row[1]) for row in rows}


def test_exports_reach_spark_as_parquet_files_with_file_and_row(
    spark_generated: Build, tmp_path: Path
) -> None:
    """The loader's one code path: DuckDB reads and checks the files, Spark
    reads each `raw` table from the Parquet file DuckDB wrote (no inserts)."""
    assert spark_generated.exports is not None
    warehouse = open_warehouse(SparkSettings.from_env(spark_generated.warehouse))
    with duckdb.connect(str(tmp_path / "load.duckdb")) as con:
        loaded = load_exports(con, spark_generated.exports)
        expected = {
            d.domain: con.execute(f"select * from raw.{d.domain}").fetchall() for d in loaded
        }
    for domain in loaded:
        described = _describe(warehouse, "raw", domain.domain)
        assert described["Provider"] == "parquet"
        assert described["Type"] == "EXTERNAL"
        assert described["Location"].endswith(f"/raw/{domain.domain}")
        types = {f.name: f.dataType.simpleString() for f in warehouse.session.table(
            f"raw.{domain.domain}").schema.fields}  # fmt: skip
        assert types.pop("_row_number") == "bigint"
        assert set(types.values()) == {"string"}, domain.domain
        rows = warehouse.rows(f"select * from raw.{domain.domain}")
        assert sorted(rows, key=str) == sorted(expected[domain.domain], key=str)


def test_marts_are_parquet_tables_of_one_published_refresh(spark_generated: Build) -> None:
    settings = SparkSettings.from_env(spark_generated.warehouse)
    warehouse = open_warehouse(settings)
    databases = {row[0] for row in warehouse.rows("show databases")}
    assert {"raw", "reference", "staging", "intermediate", *MART_SCHEMAS} <= databases
    assert not {name for name in databases if name.endswith("__building")}
    assert "demo" not in databases  # an exports refresh has no demo seeds
    runs = set()
    for schema in MART_SCHEMAS:
        for name in warehouse.tables(schema):
            described = _describe(warehouse, schema, name)
            assert described["Provider"] == "parquet", f"{schema}.{name}"
            where = table_location(warehouse.session, schema, name)
            runs.add(where.split("/data/", 1)[1].split("/", 1)[0])
    assert len(runs) == 1
    assert sorted(p.name for p in settings.data.iterdir()) == sorted(runs)
    assert "publishing: pointing the published tables at the new files" in (
        spark_generated.done.stdout
    )


# --------------------------------------------------------------------------- publishing


def test_a_failed_refresh_leaves_the_published_tables_as_they_were(
    spark_generated: Build, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh that fails after loading its exports and building staging
    (only staging is built, to keep the test short; then the rejected DM row
    stops it) drops its databases and its files."""
    assert spark_generated.exports is not None
    settings = SparkSettings.from_env(spark_generated.warehouse)
    before = _snapshot(spark_generated.warehouse)
    runs_before = sorted(p.name for p in settings.data.iterdir())
    from hpd import refresh

    real_run_dbt = refresh.run_dbt

    def staging_only(*args: Any, **kwargs: Any) -> BuildOutcome:
        selection = ["--select", "stg_dm", "--exclude-resource-type", "test", "unit_test"]
        outcome = real_run_dbt(*args[:4], selection, **kwargs)
        assert outcome.success
        return BuildOutcome(success=False, nodes=1, failures=["test: injected"])

    monkeypatch.setattr(refresh, "run_dbt", staging_only)
    bad = exports_with_a_dm_row_rejected(spark_generated.exports, tmp_path / "bad")
    done = hpd_inline(
        "run", "--target", "spark", "--exports", bad, "--spark-warehouse",
        spark_generated.warehouse, "--reports", tmp_path / "reports",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "dm.csv, row 1, column RFXSTDTC: invalid_date" in done.stderr
    assert _snapshot(spark_generated.warehouse) == before
    databases = {row[0] for row in open_warehouse(settings).rows("show databases")}
    assert not {name for name in databases if name.endswith("__building")}
    assert sorted(p.name for p in settings.data.iterdir()) == runs_before
    assert not (tmp_path / "reports").exists()


def test_bad_exports_stop_a_spark_refresh_with_the_same_one_line_error(
    spark_env: None, tmp_path: Path
) -> None:
    done = hpd_inline(
        "run", "--target", "spark", "--exports", BAD_EXPORTS / "missing_column", "--spark-warehouse",
        tmp_path / "warehouse", "--reports", tmp_path / "reports",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.strip() == "hpd: error: tr.csv, column TRDTC: required column is missing"


def test_a_second_refresh_of_the_same_warehouse_exits_3(
    spark_generated: Build, tmp_path: Path
) -> None:
    with (spark_generated.warehouse / "refresh.lock").open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        done = hpd_inline(
            "run", "--target", "spark", "--spark-warehouse", spark_generated.warehouse,
            "--reports", tmp_path / "reports",
        )  # fmt: skip
    assert done.returncode == 3, done.stdout + done.stderr
    assert "another refresh of this warehouse is running" in done.stderr


def test_report_rewrites_the_statistics_of_the_published_marts(
    spark_generated: Build, tmp_path: Path
) -> None:
    done = hpd_inline(
        "report", "--target", "spark", "--spark-warehouse", spark_generated.warehouse,
        "--reports", tmp_path / "reports", "--definition", "kim_2019",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "reports" / "report.html").is_file()
    warehouse = open_warehouse(SparkSettings.from_env(spark_generated.warehouse))
    assert warehouse.rows("select distinct definition_id from analytics.table1") == [("kim_2019",)]
    assert _describe(warehouse, "analytics", "table1")["Provider"] == "parquet"
    unknown = hpd_inline(
        "report", "--target", "spark", "--spark-warehouse", spark_generated.warehouse,
        "--reports", tmp_path / "other", "--definition", "nope",
    )  # fmt: skip
    assert unknown.returncode == 2
    assert "unknown definition 'nope'" in unknown.stderr

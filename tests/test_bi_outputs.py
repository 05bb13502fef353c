"""What analysts and BI tools get besides the warehouse: Parquet copies, a
read-only serving file, de-identified views, the docs site, SQL recipes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from browser import chromium_run
from conftest import REALWORLD, REPO, query, run_hpd

MARTS = (
    "tumor_assessments",
    "scan_intervals",
    "tumor_kinetics",
    "hpd_classification",
    "hyperprogression",
    "hpd_definition_agreement",
    "cohort_attrition",
    "subject_characteristics",
    "survival",
    "rejected_rows",
    "table1",
    "survival_summary",
)


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse refreshed from the hand-made exports, with its outputs."""
    folder = tmp_path_factory.mktemp("bi")
    result = run_hpd(
        "run", "--exports", REALWORLD, "--warehouse", folder / "warehouse.duckdb",
        "--reports", folder / "reports",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"serving:   {folder / 'warehouse.serving.duckdb'}" in result.stdout
    assert f"parquet:   {folder / 'parquet' / 'latest'}" in result.stdout
    return folder


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[object, ...]]:
    return sorted(con.execute(sql).fetchall(), key=repr)


@pytest.mark.parametrize("mart", MARTS)
def test_parquet_reads_back_equal_to_the_mart(refreshed: Path, mart: str) -> None:
    parquet = refreshed / "parquet" / "latest" / f"{mart}.parquet"
    assert parquet.is_file()
    with duckdb.connect(str(refreshed / "warehouse.duckdb"), read_only=True) as con:
        from_mart = _rows(con, f"select * from analytics.{mart}")
        from_file = _rows(con, f"select * from read_parquet('{parquet}')")
    assert from_file == from_mart
    assert from_mart or mart == "rejected_rows"


def test_serving_file_holds_the_marts_and_nothing_else(refreshed: Path) -> None:
    serving = refreshed / "warehouse.serving.duckdb"
    with duckdb.connect(str(serving), read_only=True) as con:
        schemas = {row[0] for row in con.execute(
            "select distinct table_schema from information_schema.tables "
            "where table_catalog = current_database()"
        ).fetchall()}  # fmt: skip
        assert schemas == {"analytics", "analytics_deid"}
        served = _rows(con, "select * from analytics.tumor_kinetics")
        # The de-identified views read the serving file's own copies.
        served_deid = _rows(con, "select * from analytics_deid.tumor_kinetics")
    with duckdb.connect(str(refreshed / "warehouse.duckdb"), read_only=True) as warehouse:
        assert served == _rows(warehouse, "select * from analytics.tumor_kinetics")
        assert served_deid == _rows(warehouse, "select * from analytics_deid.tumor_kinetics")
    assert served_deid


def test_a_reader_of_the_serving_file_keeps_answering_during_a_refresh(
    refreshed: Path,
) -> None:
    serving = refreshed / "warehouse.serving.duckdb"
    sql = "select usubjid, evaluability, tgkr from analytics.tumor_kinetics order by usubjid"
    reader = duckdb.connect(str(serving), read_only=True)
    expected = reader.execute(sql).fetchall()
    refresh = subprocess.Popen(
        [sys.executable, "-m", "hpd", "run", "--exports", str(REALWORLD),
         "--warehouse", str(refreshed / "warehouse.duckdb"),
         "--reports", str(refreshed / "reports")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    answers: list[list[tuple[object, ...]]] = []
    errors: list[Exception] = []

    def keep_reading() -> None:
        while refresh.poll() is None:
            try:
                answers.append(reader.execute(sql).fetchall())
                # A BI tool that reconnects, as a dashboard refresh does.
                with duckdb.connect(str(serving), read_only=True) as again:
                    answers.append(again.execute(sql).fetchall())
            except duckdb.Error as error:
                errors.append(error)
            time.sleep(0.2)

    thread = threading.Thread(target=keep_reading)
    thread.start()
    _, stderr = refresh.communicate(timeout=600)
    thread.join()
    reader.close()
    assert refresh.returncode == 0, stderr
    assert errors == []
    assert len(answers) > 10
    assert all(answer == expected for answer in answers)


def test_deidentified_views_have_no_dates_and_no_age_over_89(refreshed: Path) -> None:
    with duckdb.connect(str(refreshed / "warehouse.duckdb"), read_only=True) as con:
        columns = con.execute(
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_schema = 'analytics_deid'"
        ).fetchall()
        views = {row[0] for row in columns}
        assert {
            "tumor_assessments",
            "tumor_kinetics",
            "subject_characteristics",
            "survival",
        } <= views
        assert [c for c in columns if c[2] in ("DATE", "TIMESTAMP") or c[1].endswith("_date")] == []
        assert [c for c in columns if c[1] in ("visit", "arm", "reader_id")] == []
        ages = con.execute("select max(age) from analytics_deid.subject_characteristics").fetchone()
    assert ages is not None and ages[0] is not None and ages[0] <= 89


def test_an_age_over_89_is_grouped(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    for path in REALWORLD.iterdir():
        text = path.read_text(encoding="utf-8")
        if path.name == "dm.csv":
            text = text.replace(",72,YEARS,", ",93,YEARS,")
        (exports / path.name).write_text(text, encoding="utf-8")
    warehouse = tmp_path / "warehouse.duckdb"
    result = run_hpd("run", "--exports", exports, "--warehouse", warehouse,
                     "--reports", tmp_path / "r")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert query(warehouse, "select max(age) from analytics.subject_characteristics") == [(93.0,)]
    assert query(
        warehouse,
        "select age, age_90_or_older from analytics_deid.subject_characteristics "
        "where usubjid = 'CTR20180001-004'",
    ) == [(None, True)]


def test_every_analysis_compiles_and_runs(refreshed: Path, tmp_path: Path) -> None:
    analyses = sorted((REPO / "analyses").glob("*.sql"))
    assert len(analyses) >= 4
    env = {**os.environ, "HPD_WAREHOUSE_PATH": str(refreshed / "warehouse.duckdb")}
    compiled = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), "compile", "--project-dir", str(REPO),
         "--profiles-dir", str(REPO), "--target-path", str(tmp_path / "target"),
         "--log-path", str(tmp_path / "logs"), "--select", "resource_type:analysis",
         "--vars", "{input: exports}", "--quiet"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    with duckdb.connect(str(refreshed / "warehouse.duckdb"), read_only=True) as con:
        for analysis in analyses:
            sql = next((tmp_path / "target" / "compiled").glob(f"**/analyses/{analysis.name}"))
            rows = con.execute(sql.read_text(encoding="utf-8")).fetchall()
            assert rows, analysis.name


def test_docs_site_opens_from_disk_and_shows_the_marts(refreshed: Path, tmp_path: Path) -> None:
    site = refreshed / "reports" / "docs" / "index.html"
    assert site.is_file()
    done = chromium_run(
        tmp_path / "profile", "--dump-dom", "--virtual-time-budget=15000",
        "--window-size=1400,2000", f"file://{site}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    for mart in ("tumor_kinetics", "hyperprogression", "cohort_attrition", "survival"):
        assert mart in dom, mart
    # The lineage goes back to the SDTM sources.
    text = site.read_text(encoding="utf-8")
    assert '"source.hpd.sdtm.tr"' in text and '"model.hpd.stg_tr"' in text
    # Every model's compiled SQL is there, from the build (docs generate
    # --no-compile does not compile again).
    models = set(re.findall(r'"unique_id": "(model\.hpd\.\w+)"', text))
    assert len(models) >= 40
    assert len(re.findall(r'"compiled_code": "[^"]', text)) >= len(models)

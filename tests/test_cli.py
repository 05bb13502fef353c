"""The `hpd` command as a scheduler sees it: exit statuses, one-line errors,
Parquet as well as CSV, settings, and a published warehouse that a failed
refresh leaves as it was."""

from __future__ import annotations

import csv
import fcntl
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from conftest import REALWORLD, query, run_hpd
from hpd.refresh import building_path


def copy_exports(tmp_path: Path) -> Path:
    folder = tmp_path / "exports"
    shutil.copytree(REALWORLD, folder)
    return folder


def rewrite_csv(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    rows = edit(rows)
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_records(runs: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(runs.glob("*/run.json"))]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse published from the hand-made exports, to fail refreshes against."""
    folder = tmp_path_factory.mktemp("published")
    warehouse = folder / "warehouse.duckdb"
    result = run_hpd(
        "run", "--exports", REALWORLD, "--warehouse", warehouse, "--reports", folder / "reports"
    )
    assert result.returncode == 0, result.stderr
    return warehouse


def failing_refresh(published: Path, exports: Path) -> tuple[int, str]:
    """Refresh the published warehouse from bad exports; the warehouse must not change."""
    before = digest(published)
    result = run_hpd(
        "run",
        "--exports",
        exports,
        "--warehouse",
        published,
        "--reports",
        published.parent / "reports",
    )
    assert digest(published) == before, "a failed refresh changed the published warehouse"
    assert not building_path(published).exists()
    assert query(published, "select count(*) from analytics.tumor_kinetics")[0][0] == 7
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.returncode, lines[0]


def test_run_prints_where_the_warehouse_is(published: Path) -> None:
    result = run_hpd(
        "run",
        "--exports",
        REALWORLD,
        "--warehouse",
        published,
        "--reports",
        published.parent / "reports",
    )
    assert result.returncode == 0, result.stderr
    assert f"warehouse: {published}" in result.stdout
    assert "treated subjects: 7; evaluable: 3" in result.stdout
    report = published.parent / "reports" / "report.html"
    assert f"report:    {report}" in result.stdout
    assert report.is_file() and (report.parent / "table1.csv").is_file()


def test_report_rebuilds_from_an_existing_warehouse(published: Path, tmp_path: Path) -> None:
    result = run_hpd(
        "report", "--warehouse", published, "--reports", tmp_path / "r", "--definition", "kim_2019"
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "r" / "report.html").is_file()
    assert query(published, "select distinct definition_id from analytics.table1") == [
        ("kim_2019",)
    ]
    unknown = run_hpd("report", "--warehouse", published, "--definition", "nobody_2030")
    assert unknown.returncode == 2
    assert "unknown definition 'nobody_2030'" in unknown.stderr


def test_missing_required_file(published: Path, tmp_path: Path) -> None:
    exports = copy_exports(tmp_path)
    (exports / "tr.csv").unlink()
    status, message = failing_refresh(published, exports)
    assert status == 1
    assert "tr.csv" in message and "required file is missing" in message


def test_missing_optional_file_is_fine(tmp_path: Path) -> None:
    exports = copy_exports(tmp_path)
    (exports / "qs.csv").unlink()
    warehouse = tmp_path / "wh.duckdb"
    result = run_hpd(
        "run", "--exports", exports, "--warehouse", warehouse, "--reports", tmp_path / "reports"
    )
    assert result.returncode == 0, result.stderr
    # Without QS, baseline ECOG falls back to SC where SC has it, else null.
    sources = query(
        warehouse, "select distinct ecog_baseline_source from analytics.subject_characteristics"
    )
    assert {row[0] for row in sources} <= {"SC", None}


def test_missing_required_column(published: Path, tmp_path: Path) -> None:
    exports = copy_exports(tmp_path)

    def drop_trdtc(rows: list[list[str]]) -> list[list[str]]:
        index = [name.upper() for name in rows[0]].index("TRDTC")
        return [row[:index] + row[index + 1 :] for row in rows]

    rewrite_csv(exports / "tr.csv", drop_trdtc)
    status, message = failing_refresh(published, exports)
    assert status == 1
    assert message.endswith("tr.csv, column TRDTC: required column is missing")


def test_subject_not_in_dm(published: Path, tmp_path: Path) -> None:
    exports = copy_exports(tmp_path)

    def add_orphan(rows: list[list[str]]) -> list[list[str]]:
        header = [name.upper() for name in rows[0]]
        orphan = list(rows[1])
        orphan[header.index("USUBJID")] = "NCT01000001-999"
        return [*rows, orphan]

    rewrite_csv(exports / "tr.csv", add_orphan)
    rows = (exports / "tr.csv").read_text(encoding="utf-8").strip().splitlines()
    status, message = failing_refresh(published, exports)
    assert status == 1
    assert f"tr.csv, row {len(rows) - 1}, column USUBJID" in message
    assert "NCT01000001-999" in message and "not in DM" in message


def test_repeated_dm_subject(published: Path, tmp_path: Path) -> None:
    exports = copy_exports(tmp_path)
    rewrite_csv(exports / "dm.csv", lambda rows: [*rows, rows[1]])
    rows = (exports / "dm.csv").read_text(encoding="utf-8").strip().splitlines()
    status, message = failing_refresh(published, exports)
    assert status == 1
    assert f"dm.csv, row {len(rows) - 1}, column USUBJID" in message


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = run_hpd(
        "run", "--exports", tmp_path / "nowhere", "--warehouse", tmp_path / "wh.duckdb"
    )
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
    unknown = run_hpd("run", "--set", "tgkr_threshold=3", "--warehouse", tmp_path / "wh.duckdb")
    assert unknown.returncode == 2
    assert "unknown setting 'tgkr_threshold'" in unknown.stderr
    bad_option = run_hpd("run", "--reader", "radiologist")
    assert bad_option.returncode == 2


def test_second_refresh_is_refused_while_one_runs(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh.duckdb"
    with (tmp_path / "wh.duckdb.lock").open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run_hpd("run", "--exports", REALWORLD, "--warehouse", warehouse)
    assert result.returncode == 3
    assert "another refresh of this warehouse is running" in result.stderr
    assert not warehouse.exists()
    # Its run record says so, for `hpd status` and the orchestrator's retry.
    (record,) = run_records(tmp_path / "runs")
    assert record["status"] == "locked" and record["exit_code"] == 3
    assert record["message"] == f"{warehouse}: another refresh of this warehouse is running"
    assert record["stages"] == [] and record["marts"] == {}


def test_parquet_exports_give_the_same_marts(published: Path, tmp_path: Path) -> None:
    exports = tmp_path / "parquet"
    exports.mkdir()
    with duckdb.connect() as con:
        for path in REALWORLD.glob("*.csv"):
            con.execute(
                "copy (select * from read_csv(?, all_varchar = true)) to ? (format parquet)",
                [str(path), str(exports / (path.stem + ".parquet"))],
            )
    warehouse = tmp_path / "wh.duckdb"
    result = run_hpd(
        "run", "--exports", exports, "--warehouse", warehouse, "--reports", tmp_path / "reports"
    )
    assert result.returncode == 0, result.stderr
    for mart in ("tumor_assessments", "tumor_kinetics", "hpd_classification", "survival"):
        sql = f"select * exclude (studyid) from analytics.{mart} order by all"
        assert query(warehouse, sql) == query(published, sql), mart
    rejected = "select file_name, row_number, column_name, reason from analytics.rejected_rows"
    assert {
        (f.replace(".parquet", ".csv"), *rest) for f, *rest in query(warehouse, rejected)
    } == set(query(published, rejected))


def test_a_threshold_setting_changes_the_result(published: Path, tmp_path: Path) -> None:
    hpd_sql = "select usubjid from analytics.tumor_kinetics where hpd order by usubjid"
    tgkrs = query(published, "select tgkr from analytics.tumor_kinetics where hpd")
    assert tgkrs, "the hand-made cohort needs one HPD subject for this test"
    above = max(row[0] for row in tgkrs) + 0.5
    warehouse = tmp_path / "wh.duckdb"
    result = run_hpd(
        "run",
        "--exports",
        REALWORLD,
        "--warehouse",
        warehouse,
        "--reports",
        tmp_path / "reports",
        "--set",
        f"tgkr_min_ratio={above}",
    )
    assert result.returncode == 0, result.stderr
    assert query(published, hpd_sql) != []
    assert query(warehouse, hpd_sql) == []


def test_a_rejected_dm_row_stops_the_refresh(published: Path, tmp_path: Path) -> None:
    exports = copy_exports(tmp_path)

    def bad_death_date(rows: list[list[str]]) -> list[list[str]]:
        index = [name.upper() for name in rows[0]].index("DTHDTC")
        rows[2][index] = "2017-13-45"
        return rows

    rewrite_csv(exports / "dm.csv", bad_death_date)
    status, message = failing_refresh(published, exports)
    assert status == 1
    assert "dm.csv, row 2, column DTHDTC: invalid_date" in message


def test_a_warehouse_named_after_a_schema_is_refused(tmp_path: Path) -> None:
    result = run_hpd("run", "--warehouse", tmp_path / "analytics.duckdb")
    assert result.returncode == 2
    assert "may not be named after one of its schemas" in result.stderr
    assert not (tmp_path / "analytics.duckdb").exists()
    # A usage error once the warehouse is known is recorded too.
    (record,) = run_records(tmp_path / "runs")
    assert record["status"] == "error" and record["exit_code"] == 2
    assert "may not be named after one of its schemas" in record["message"]

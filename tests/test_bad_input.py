"""Bad exports (SPEC §8): a clear one-line error naming file, row and column,
the right exit status, every unused row in `analytics.rejected_rows`, and a
published warehouse that a failed or killed refresh leaves as it was."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import REPO, query, run_hpd
from hpd.refresh import building_path

CORPUS = REPO / "tests" / "data" / "bad_exports"
KINETICS = "select * from analytics.tumor_kinetics order by usubjid"


@dataclass(frozen=True)
class Case:
    status: int
    # For a failed refresh: the one line on stderr, after "hpd: error: ".
    error: str | None = None
    # For a refresh that goes through: (file, row, column, reason) rejected,
    # and warnings of the data-quality gate that must be printed.
    rejected: set[tuple[str, int, str | None, str]] = field(default_factory=set)
    warnings: tuple[str, ...] = ()


CASES: dict[str, Case] = {
    "missing_file": Case(1, error="{exports}/tr.csv: required file is missing"),
    "missing_column": Case(1, error="tr.csv, column TRDTC: required column is missing"),
    "lowercase_and_extra_columns": Case(0),
    "unknown_unit": Case(
        0,
        rejected={("tr.csv", 5, "TRSTRESU", "invalid_unit")},
        warnings=("tr.csv, row 5, column TRSTRESU: unit 'in' is not mm, cm or blank",),
    ),
    "negative_diameter": Case(
        0,
        rejected={("tr.csv", 5, "TRSTRESN", "negative_result")},
        warnings=("tr.csv, row 5, column TRSTRESN: diameter -40 mm is outside 0-500 mm",),
    ),
    "absurd_diameter": Case(
        0, warnings=("tr.csv, row 5, column TRSTRESN: diameter 900 mm is outside 0-500 mm",)
    ),
    "unparseable_date": Case(
        0,
        rejected={("tr.csv", 8, "TRDTC", "invalid_date")},
        warnings=("tr.csv, row 8, column TRDTC: date '2020-13-45' is not an ISO 8601 date",),
    ),
    "partial_date": Case(0),
    "future_date": Case(
        0, warnings=("tr.csv, row 8, column TRDTC: date '2099-05-27' is after today",)
    ),
    "scan_after_death": Case(
        0,
        warnings=(
            "tr.csv, row 8, column TRDTC: scan date '2020-08-20' is after the death of "
            "subject 'S1-002' on 2020-08-01",
        ),
    ),
    "duplicate_dm_subject": Case(
        1, error="dm.csv, row 3, column USUBJID: subject 'S1-002' appears more than once in DM"
    ),
    "tr_subject_not_in_dm": Case(
        1, error="tr.csv, row 9, column USUBJID: subject 'S1-003' is not in DM"
    ),
    "tr_lesion_not_in_tu": Case(
        0,
        rejected={("tr.csv", 9, "TRLNKID", "unknown_lesion")},
        warnings=("tr.csv, row 9, column TRLNKID: lesion 'T09' of subject 'S1-002' is not",),
    ),
    "duplicated_measurement": Case(
        # Row 8 (2020-05-27) is later than row 9 (2020-05-26): row 9 goes.
        0,
        rejected={("tr.csv", 9, None, "duplicate")},
        warnings=("tr.csv, row 9, column TRLNKID: lesion 'T01' of subject 'S1-002' is measured",),
    ),
    "non_utf8_bytes": Case(
        1, error="dm.csv, row 1, column SEX: not UTF-8 text (the file must be UTF-8)"
    ),
    "quote_broken_line": Case(1, error="ex.csv, row 2: not valid CSV"),
    "empty_file": Case(1, error="ds.csv: the file is empty (no header row)"),
    "subject_id_with_quotes_and_semicolons": Case(0),
}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("published")
    warehouse = folder / "warehouse.duckdb"
    result = run_hpd(
        "run", "--exports", CORPUS / "_base", "--warehouse", warehouse, "--reports", folder / "r"
    )
    assert result.returncode == 0, result.stderr
    return warehouse


def test_every_case_in_the_corpus_is_tested() -> None:
    folders = {path.name for path in CORPUS.iterdir() if path.is_dir()} - {"_base"}
    assert folders == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_exports(name: str, published: Path, tmp_path: Path) -> None:
    case = CASES[name]
    exports = CORPUS / name
    if case.status == 0:
        warehouse = tmp_path / "warehouse.duckdb"
    else:
        warehouse = published
        before = digest(published)
        answers = query(published, KINETICS)
    result = run_hpd(
        "run", "--exports", exports, "--warehouse", warehouse, "--reports", tmp_path / "r"
    )
    assert result.returncode == case.status, result.stdout + result.stderr
    assert "Traceback" not in result.stderr

    if case.status != 0:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert case.error is not None
        assert lines[0].startswith("hpd: error: " + case.error.format(exports=exports))
        assert digest(published) == before, "the failed refresh changed the warehouse"
        assert query(published, KINETICS) == answers
        assert not building_path(published).exists()
        return

    rejected = query(
        warehouse, "select file_name, row_number, column_name, reason from analytics.rejected_rows"
    )
    assert set(rejected) == case.rejected
    for warning in case.warnings:
        assert f"hpd:   warning: {warning}" in result.stdout
    # Rows in = rows used + rows rejected, per domain.
    assert query(
        warehouse,
        "select count(*) from analytics.input_reconciliation "
        "where rows_read <> rows_used + rows_rejected",
    ) == [(0,)]


def test_lowercase_and_extra_columns_change_nothing(published: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    result = run_hpd(
        "run",
        "--exports",
        CORPUS / "lowercase_and_extra_columns",
        "--warehouse",
        warehouse,
        "--reports",
        tmp_path / "r",
    )
    assert result.returncode == 0, result.stderr
    assert query(warehouse, KINETICS) == query(published, KINETICS)


def test_partial_date_is_imputed_and_flagged(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    result = run_hpd(
        "run", "--exports", CORPUS / "partial_date", "--warehouse", warehouse,
        "--reports", tmp_path / "r",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = query(
        warehouse,
        "select assessment_date, date_imputed, role from analytics.tumor_assessments "
        "where usubjid = 'S1-002' and visitnum = 3",
    )
    assert [(str(date), imputed, role) for date, imputed, role in rows] == [
        ("2020-05-01", True, "first_evaluation")
    ]


def test_a_subject_id_with_quotes_and_semicolons_comes_through(tmp_path: Path) -> None:
    nasty = "S1-00\"2'; drop table analytics.tumor_kinetics; --"
    warehouse = tmp_path / "warehouse.duckdb"
    result = run_hpd(
        "run",
        "--exports",
        CORPUS / "subject_id_with_quotes_and_semicolons",
        "--warehouse",
        warehouse,
        "--reports",
        tmp_path / "r",
    )
    assert result.returncode == 0, result.stderr
    rows = query(
        warehouse,
        "select usubjid, evaluability from analytics.tumor_kinetics where usubjid = ?",
        [nasty],
    )
    assert rows == [(nasty, "no_pre_baseline_scan")]
    assert query(warehouse, "select count(*) from analytics.tumor_kinetics") == [(2,)]


def test_names_and_paths_cannot_inject_sql(tmp_path: Path) -> None:
    """A folder and a warehouse path with quotes and semicolons are only data."""
    folder = tmp_path / "ex'; drop schema raw cascade; --"
    folder.mkdir()
    for path in (CORPUS / "_base").iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    warehouse = tmp_path / "wh'; select 1; --.duckdb"
    result = run_hpd(
        "run", "--exports", folder, "--warehouse", warehouse, "--reports", tmp_path / "r"
    )
    assert result.returncode == 0, result.stderr
    assert query(warehouse, "select count(*) from analytics.tumor_kinetics") == [(2,)]


def test_a_killed_refresh_leaves_the_published_warehouse(published: Path, tmp_path: Path) -> None:
    before = digest(published)
    answers = query(published, KINETICS)
    building = building_path(published)
    process = subprocess.Popen(
        [sys.executable, "-m", "hpd", "run", "--exports", CORPUS / "_base",
         "--warehouse", published, "--reports", tmp_path / "r"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    # Kill it once the dbt build is under way in the new file.
    for line in process.stdout:
        if "building the warehouse" in line:
            break
    deadline = time.monotonic() + 60
    while not building.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    assert process.poll() is None, "the refresh ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert digest(published) == before
    assert query(published, KINETICS) == answers
    # The next refresh starts clean over the leftovers of the killed one.
    result = run_hpd(
        "run", "--exports", CORPUS / "_base", "--warehouse", published, "--reports", tmp_path / "r"
    )
    assert result.returncode == 0, result.stderr
    assert not building.exists()
    assert query(published, KINETICS) == answers

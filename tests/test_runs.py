"""`hpd run` under cron and orchestrators: the run record each run leaves
(runs/<run_id>/), `hpd status`, `--fail-fast`, progress lines with the
elapsed time, and SIGTERM taking the clean-up path of Ctrl-C."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, exports_with_a_dm_row_rejected, query
from hpd.cli import main
from hpd.refresh import building_path
from hpd.runs import KEEP_RUNS, STARTED_FILE, RunRecord, Stage, reset_peak_rss

BAD_EXPORTS = REPO / "tests" / "data" / "bad_exports"
RECORD_KEYS = {
    "run_id",
    "started_at",
    "ended_at",
    "seconds",
    "status",
    "exit_code",
    "message",
    "target",
    "warehouse",
    "exports",
    "settings",
    "rows",
    "subjects",
    "marts",
    "stages",
    "peak_rss_bytes",
}
DEMO_STAGES = ["dbt_build", "quality_marts", "statistics_report", "outputs", "docs", "publish"]
# `[  12.3s dbt_build] hpd: ...`, or without a stage between two stages.
PROGRESS_LINE = re.compile(r"^\[ *\d+\.\ds(?: (?P<stage>[a-z_]+))?\] hpd: ")


def run_folders(runs: Path) -> list[Path]:
    return sorted(path for path in runs.iterdir() if (path / "run.json").is_file())


def records(runs: Path) -> list[dict[str, Any]]:
    return [json.loads((path / "run.json").read_text()) for path in run_folders(runs)]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hpd_process(*args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hpd", *map(str, args)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def hpd_run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hpd", "run", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )


# --------------------------------------------------------------------------- a successful run


def test_a_successful_run_leaves_its_record(demo_warehouse: Path) -> None:
    runs = demo_warehouse.parent / "runs"
    (record,) = [r for r in records(runs) if r["warehouse"] == str(demo_warehouse.resolve())]
    assert set(record) == RECORD_KEYS
    assert re.fullmatch(r"\d{8}T\d{12}Z", record["run_id"])
    assert record["status"] == "success" and record["exit_code"] == 0
    assert record["message"] is None
    assert record["target"] == "duckdb" and record["exports"] is None
    assert record["settings"] == {} and record["rows"] == {}
    assert record["subjects"] == 45  # the demo cohort's DM
    started = datetime.fromisoformat(record["started_at"])
    ended = datetime.fromisoformat(record["ended_at"])
    assert started.utcoffset() is not None and started < ended
    assert record["seconds"] == pytest.approx((ended - started).total_seconds(), abs=1.0)
    assert record["run_id"].startswith(started.strftime("%Y%m%dT%H%M%S"))

    stages = record["stages"]
    assert [stage["name"] for stage in stages] == DEMO_STAGES
    for stage in stages:
        assert set(stage) == {"name", "seconds", "peak_rss_bytes"}
        assert stage["seconds"] > 0 and stage["peak_rss_bytes"] > 2**20, stage
    assert record["peak_rss_bytes"] == max(stage["peak_rss_bytes"] for stage in stages)
    assert sum(stage["seconds"] for stage in stages) <= record["seconds"]

    tables = query(
        demo_warehouse,
        "select table_name from information_schema.tables where table_schema = 'analytics'",
    )
    counts = {
        name: query(demo_warehouse, f"select count(*) from analytics.{name}")[0][0]
        for (name,) in tables
    }
    assert record["marts"] == counts
    assert record["marts"]["tumor_kinetics"] == 45

    folder = runs / record["run_id"]
    results = json.loads((folder / "run_results.json").read_text())
    # The build's results, not those of `dbt docs generate` that ran after it.
    assert results["args"]["which"] == "build"
    assert not {r["status"] for r in results["results"]} & {"error", "fail", "skipped"}
    assert any(r["unique_id"].startswith("unit_test.") for r in results["results"])
    assert (
        "dbt build" in (folder / "dbt.log").read_text(errors="replace")
        or (folder / "dbt.log").stat().st_size > 0
    )
    assert not (folder / STARTED_FILE).exists()


def test_progress_lines_carry_the_elapsed_time_and_the_stage(demo_warehouse: Path) -> None:
    (folder,) = run_folders(demo_warehouse.parent / "runs")
    lines = (folder / "hpd.log").read_text().splitlines()
    assert lines and all(PROGRESS_LINE.match(line) for line in lines), lines
    stages = [m["stage"] for line in lines if (m := PROGRESS_LINE.match(line)) and m["stage"]]
    # Stages in their order, each shown at least once.
    assert list(dict.fromkeys(stages)) == DEMO_STAGES
    building = next(line for line in lines if "building the warehouse" in line)
    assert PROGRESS_LINE.match(building)["stage"] == "dbt_build"  # type: ignore[index]
    assert lines[-1].endswith(f"report:    {demo_warehouse.parent / 'reports' / 'report.html'}")
    elapsed = [float(line[1:].split("s", 1)[0]) for line in lines]
    assert elapsed == sorted(elapsed)


def test_status_of_a_warehouse(demo_warehouse: Path) -> None:
    """As a monitoring check calls it: its own process, exit 0 after a success."""
    done = subprocess.run(
        [sys.executable, "-m", "hpd", "status", "--warehouse", str(demo_warehouse)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    header, row = done.stdout.splitlines()[:2]
    assert header.split() == [
        "run", "id", "started", "(UTC)", "seconds", "status", "exit", "subjects", "message",
    ]  # fmt: skip
    assert row.split()[4:7] == ["success", "0", "45"]
    for stage in DEMO_STAGES:
        assert re.search(rf"^  {stage} +\d+\.\d +\d+ MiB$", done.stdout, re.MULTILINE), stage


# --------------------------------------------------------------------------- failures


def test_a_failed_run_records_the_message(tmp_path: Path) -> None:
    exports = BAD_EXPORTS / "missing_file"
    warehouse = tmp_path / "wh.duckdb"
    done = hpd_run("--exports", exports, "--warehouse", warehouse, "--reports", tmp_path / "r")
    assert done.returncode == 1, done.stdout + done.stderr
    (error,) = done.stderr.splitlines()
    assert error == f"hpd: error: {exports}/tr.csv: required file is missing"
    (record,) = records(tmp_path / "runs")
    assert set(record) == RECORD_KEYS
    assert record["status"] == "failed" and record["exit_code"] == 1
    assert record["message"] == error.removeprefix("hpd: error: ")
    assert record["exports"] == str(exports)
    assert record["marts"] == {} and record["subjects"] is None
    assert [stage["name"] for stage in record["stages"]] == ["load"]
    folder = run_folders(tmp_path / "runs")[0]
    log = (folder / "hpd.log").read_text().splitlines()
    assert log[-1] == error  # the error as printed, after the progress lines
    assert not (folder / "run_results.json").exists()  # dbt never ran
    assert all(PROGRESS_LINE.match(line) for line in done.stdout.splitlines())


def test_fail_fast_stops_the_build_at_the_first_failing_node(tmp_path: Path) -> None:
    # The `_base` exports with DM row 2's death date unreadable.
    exports = exports_with_a_dm_row_rejected(
        BAD_EXPORTS / "_base", tmp_path / "exports", row=2, column="DTHDTC", date="2020-13-45"
    )
    done = hpd_run(
        "--exports", exports, "--warehouse", tmp_path / "wh.duckdb", "--reports", tmp_path / "r",
        "--fail-fast", "--set", "tgkr_min_ratio=3",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    (error,) = done.stderr.splitlines()
    assert error.startswith("hpd: error: dm.csv, row 2, column DTHDTC: invalid_date")
    # dbt writes nothing itself: every line on stdout is one of ours.
    assert all(PROGRESS_LINE.match(line) for line in done.stdout.splitlines()), done.stdout
    assert "\x1b[" not in done.stdout

    (record,) = records(tmp_path / "runs")
    assert record["status"] == "failed" and record["exit_code"] == 1
    assert record["settings"] == {"tgkr_min_ratio": 3}
    assert record["rows"]["dm"] == 2 and record["subjects"] == 2
    assert [s["name"] for s in record["stages"]] == ["load", "quality_exports", "dbt_build"]
    folder = run_folders(tmp_path / "runs")[0]
    results = json.loads((folder / "run_results.json").read_text())["results"]
    failing = [r for r in results if r["status"] in {"fail", "error"}]
    skipped = [r for r in results if r["message"] == "Skipping due to fail_fast"]
    assert failing and len(failing) <= 2  # the first failure (two threads: maybe one more)
    assert len(skipped) > len(results) / 2
    assert not building_path(tmp_path / "wh.duckdb").exists()


# --------------------------------------------------------------------------- SIGTERM


def test_sigterm_during_the_build(demo_warehouse: Path, tmp_path: Path) -> None:
    """Published warehouse byte-identical, nothing half-built left, exit 143,
    and a record that says interrupted."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(demo_warehouse, warehouse)
    before = digest(warehouse)
    runs = tmp_path / "runs"
    process = hpd_process(
        "run", "--warehouse", warehouse, "--reports", tmp_path / "reports",
        "--runs", runs, "--progress-every", "0.5",
    )  # fmt: skip
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        # A periodic line once dbt has finished some nodes: the build is under way.
        if re.search(r"dbt build: [1-9]\d* of \d+ nodes done", line):
            break
    assert process.poll() is None, "the refresh ended before it could be stopped"
    assert PROGRESS_LINE.match(seen[-1])["stage"] == "dbt_build"  # type: ignore[index]
    os.kill(process.pid, signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 143, "".join(seen) + out + err
    assert err.splitlines() == ["hpd: interrupted (SIGTERM); the published warehouse is unchanged"]
    # No node reported as failing: the cancelled queries are not the data's fault.
    assert "ERROR:" not in out and "FAIL:" not in out

    assert digest(warehouse) == before
    left = sorted(path.name for path in tmp_path.rglob("*") if "building" in path.name)
    assert left == []
    assert not building_path(warehouse).exists()
    assert not (tmp_path / "reports").exists()
    (record,) = records(runs)
    assert record["status"] == "interrupted" and record["exit_code"] == 143
    assert record["message"] == "interrupted (SIGTERM); the published warehouse is unchanged"
    assert [stage["name"] for stage in record["stages"]] == ["dbt_build"]
    assert record["marts"] == {}
    assert (runs / record["run_id"] / "run_results.json").is_file()


# --------------------------------------------------------------------------- hpd status


def _record(runs: Path, run_id: str, status: str, warehouse: str, **fields: Any) -> None:
    folder = runs / run_id
    folder.mkdir(parents=True)
    code = {"success": 0, "failed": 1, "locked": 3, "error": 2, "interrupted": 143}[status]
    record = {
        "run_id": run_id,
        "started_at": f"{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}T{run_id[9:11]}:"
        f"{run_id[11:13]}:{run_id[13:15]}+00:00",
        "seconds": 12.5,
        "status": status,
        "exit_code": code,
        "message": None if status == "success" else f"{status}: " + "x" * 200,
        "target": "duckdb",
        "warehouse": warehouse,
        "subjects": 200,
        "stages": [{"name": "load", "seconds": 1.25, "peak_rss_bytes": 300 * 2**20}],
        "peak_rss_bytes": 300 * 2**20,
        **fields,
    }
    (folder / "run.json").write_text(json.dumps(record))


def test_status_without_records_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--runs", str(tmp_path / "runs")]) == 2
    assert "no run records" in capsys.readouterr().out
    assert main(["status", "--warehouse", str(tmp_path / "wh.duckdb"), "--json"]) == 2
    assert json.loads(capsys.readouterr().out) == []


def test_status_exit_follows_the_latest_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    ours, theirs = str(tmp_path / "wh.duckdb"), str(tmp_path / "other.duckdb")
    _record(runs, "20260101T020000000000Z", "success", ours)
    _record(runs, "20260102T020000000000Z", "failed", ours)
    assert main(["status", "--warehouse", ours]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[1].startswith("20260102T020000000000Z  2026-01-02 02:00:00")
    assert lines[1].split()[4:7] == ["failed", "1", "200"]
    assert lines[2].split()[4] == "success"
    assert "failed: xxx" in lines[1] and len(lines[1]) < 160  # the message, shortened
    assert "run 20260102T020000000000Z" in out
    assert re.search(r"^  load +1\.2 +300 MiB$", out, re.MULTILINE)

    # Another warehouse's runs in the same folder count for --runs only.
    _record(runs, "20260103T020000000000Z", "success", theirs)
    assert main(["status", "--warehouse", ours]) == 1
    assert main(["status", "--runs", str(runs)]) == 0
    capsys.readouterr()
    assert main(["status", "--runs", str(runs), "--json", "--last", "2"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in shown] == ["20260103T020000000000Z", "20260102T020000000000Z"]

    for day, status in ((4, "locked"), (5, "interrupted"), (6, "error")):
        _record(runs, f"2026010{day}T020000000000Z", status, ours)
        assert main(["status", "--warehouse", ours]) == 1, status
    _record(runs, "20260110T020000000000Z", "success", ours)
    assert main(["status", "--warehouse", ours]) == 0


def test_status_tells_a_running_run_from_a_killed_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run folder without run.json: its process still runs, or was killed
    outright (SIGKILL, out of memory) before it could write its record."""
    runs = tmp_path / "runs"
    warehouse = str(tmp_path / "wh.duckdb")
    _record(runs, "20260101T020000000000Z", "success", warehouse)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    for run_id, pid in (("20260102T020000000000Z", ended.pid), ("20260103T020000000000Z", None)):
        (runs / run_id).mkdir()
        started = {
            "run_id": run_id,
            "started_at": "2026-01-02T02:00:00+00:00",
            "pid": pid or os.getpid(),
            "target": "duckdb",
            "warehouse": warehouse,
        }
        (runs / run_id / STARTED_FILE).write_text(json.dumps(started))
    # The newest is running (this very process): the exit status is the killed one's.
    assert main(["status", "--warehouse", warehouse]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[3:6] == ["-", "running", "-"]
    assert lines[2].split()[3:6] == ["-", "killed", "-"]
    assert lines[2].endswith("no run record: the process was killed")


# --------------------------------------------------------------------------- the helpers


def test_old_run_records_are_pruned(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for day in range(KEEP_RUNS + 5):
        (runs / f"2025{1 + day // 28:02d}{1 + day % 28:02d}T000000000000Z").mkdir(parents=True)
    (runs / "notes").mkdir()  # not a run: left alone
    record = RunRecord(runs, target="duckdb", warehouse="wh", exports=None)
    record.finish("success", 0, None)
    kept = sorted(path.name for path in runs.iterdir())
    assert len(kept) == KEEP_RUNS + 1 and "notes" in kept
    assert record.run_id in kept
    assert "20250101T000000000000Z" not in kept


def test_a_stage_measures_its_own_peak_memory() -> None:
    if not reset_peak_rss():
        pytest.skip("no /proc/self/clear_refs here: peaks are the process's")
    with Stage("big") as big:
        block = b"x" * (200 * 2**20)
        del block
    with Stage("small") as small:
        pass
    assert big.peak_rss_bytes - small.peak_rss_bytes > 150 * 2**20
    assert big.seconds > 0 and small.seconds >= 0

"""Shared fixtures: the `hpd` command run as a user runs it, and its warehouses."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[1]
REALWORLD = REPO / "tests" / "data" / "realworld"


def run_hpd(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """`python -m hpd ARGS`, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "hpd", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


DBT = Path(sys.executable).with_name("dbt")


def apt_install(package: str, reason: str) -> None:
    """Install Debian's `package` (as root) for a test whose `reason` says
    what is missing; a clear failure, never a skip, when it cannot be."""
    if os.geteuid() != 0:
        pytest.fail(f"{reason}: install Debian's {package} (needs root)")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", package],
    ):
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=1200, env=environment, check=False
        )
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-10:])
            pytest.fail(f"{reason}, and `{' '.join(command)}` failed:\n{tail}")


def exports_with_a_dm_row_rejected(
    exports: Path, target: Path, row: int = 1, column: str = "RFXSTDTC", date: str = "2020-02-30"
) -> Path:
    """A copy of `exports` in `target` with DM's `row` (from 1 after the
    header) given the unreadable `date` in `column`: the load passes, and a
    rejected DM row stops the refresh after the build (SPEC rule 6)."""
    shutil.copytree(exports, target)
    path = target / "dm.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    rows[row][[name.upper() for name in rows[0]].index(column)] = date
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return target


def dbt(
    command: list[str], project: Path, work: Path, env: dict[str, str | None] | None = None
) -> subprocess.CompletedProcess[str]:
    """`dbt COMMAND` on `project`, with its own warehouse, target and logs in
    `work`; `env` sets (or, with None, removes) environment variables."""
    environment = {**os.environ, "HPD_WAREHOUSE_PATH": str(work / "wh.duckdb")}
    for name, value in (env or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return subprocess.run(
        [
            str(DBT),
            *command,
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
            "--target-path",
            str(work / "target"),
            "--log-path",
            str(work / "logs"),
        ],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


def query(warehouse: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def query_dicts(warehouse: Path, sql: str) -> list[dict[str, Any]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cursor = con.execute(sql)
        names = [column[0] for column in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def build_kinetics_warehouse(exports: Path) -> Path:
    """A warehouse beside `exports` with `analytics.tumor_kinetics` and what it
    needs, built by dbt without data tests (for tests that compare with it)."""
    from hpd.dbt_build import run_dbt
    from hpd.loader import load_exports

    folder = exports.parent
    warehouse = folder / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        load_exports(con, exports)
    selection = ["--select", "+tumor_kinetics", "--exclude", "path:seeds/demo"]
    no_tests = ["--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]
    with pytest.MonkeyPatch.context() as patch:
        # run_dbt points HPD_WAREHOUSE_PATH at this file: restored afterwards.
        patch.delenv("HPD_WAREHOUSE_PATH", raising=False)
        outcome = run_dbt(
            "build", warehouse, {"input": "exports"}, folder / "dbt", selection + no_tests
        )
    assert outcome.success, outcome.failures
    return warehouse


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo cohort built once by `hpd run`, with dbt's unit and data tests."""
    folder = tmp_path_factory.mktemp("demo")
    warehouse = folder / "warehouse.duckdb"
    result = run_hpd(
        "run", "--warehouse", warehouse, "--reports", folder / "reports", "--unit-tests"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return warehouse


@pytest.fixture(scope="session")
def hpd() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_hpd

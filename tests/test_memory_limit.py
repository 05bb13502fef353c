"""DuckDB's memory limit for refreshes (HPD_DUCKDB_MEMORY_LIMIT): the same
for the refresh's own connections and dbt's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from conftest import REPO
from hpd.project import DEFAULT_MEMORY_LIMIT, MEMORY_LIMIT_VARIABLE, limit_duckdb_memory

DBT = Path(sys.executable).with_name("dbt")


def setting(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute("select current_setting('memory_limit')").fetchone()
    assert row is not None
    return str(row[0])


def expected(limit: str) -> str:
    """How DuckDB shows `limit` once set."""
    with duckdb.connect() as con:
        con.execute(f"set memory_limit = '{limit}'")
        return setting(con)


def test_the_default_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MEMORY_LIMIT_VARIABLE, raising=False)
    with duckdb.connect() as con:
        assert setting(limit_duckdb_memory(con)) == expected(DEFAULT_MEMORY_LIMIT)


def test_the_variable_overrides_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MEMORY_LIMIT_VARIABLE, "1GB")
    with duckdb.connect() as con:
        shown = setting(limit_duckdb_memory(con))
    assert shown == expected("1GB")
    assert shown != expected(DEFAULT_MEMORY_LIMIT)


@pytest.mark.parametrize("limit", ["1GB", None])
def test_dbt_connection_has_the_same_limit(tmp_path: Path, limit: str | None) -> None:
    env = {**os.environ, "HPD_WAREHOUSE_PATH": str(tmp_path / "wh.duckdb")}
    env.pop(MEMORY_LIMIT_VARIABLE, None)
    if limit:
        env[MEMORY_LIMIT_VARIABLE] = limit
    result = subprocess.run(
        [
            str(DBT),
            "show",
            "--inline",
            "select current_setting('memory_limit') as memory_limit",
            "--output",
            "json",
            "--log-format",
            "json",
            "--project-dir",
            str(REPO),
            "--profiles-dir",
            str(REPO),
            "--target-path",
            str(tmp_path / "target"),
            "--log-path",
            str(tmp_path / "logs"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    shown = [
        json.loads(event["data"]["preview"])[0]["memory_limit"]
        for event in map(json.loads, result.stdout.splitlines())
        if event.get("data", {}).get("preview")
    ]
    assert shown == [expected(limit or DEFAULT_MEMORY_LIMIT)], result.stdout

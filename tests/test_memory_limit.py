"""DuckDB's memory limit for refreshes (HPD_DUCKDB_MEMORY_LIMIT): the same
for the refresh's own connections and dbt's."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from conftest import REPO, dbt
from hpd.project import DEFAULT_MEMORY_LIMIT, MEMORY_LIMIT_VARIABLE, limit_duckdb_memory


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
    result = dbt(
        [
            "show",
            "--inline",
            "select current_setting('memory_limit') as memory_limit",
            "--output",
            "json",
            "--log-format",
            "json",
        ],
        REPO,
        tmp_path,
        env={MEMORY_LIMIT_VARIABLE: limit},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    shown = [
        json.loads(event["data"]["preview"])[0]["memory_limit"]
        for event in map(json.loads, result.stdout.splitlines())
        if event.get("data", {}).get("preview")
    ]
    assert shown == [expected(limit or DEFAULT_MEMORY_LIMIT)], result.stdout

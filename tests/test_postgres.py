"""The same warehouse on PostgreSQL 15: every model, seed, unit and data test
builds and passes there, every mart holds the same rows and values as on
DuckDB, a failed refresh leaves the published schemas as they were, and the
analyst role reads `analytics` and nothing else.

The session fixture starts a real, throw-away PostgreSQL 15 cluster in a
temporary folder (Debian's /usr/lib/postgresql/15/bin; installed with
apt-get when missing and running as root) listening on a unix socket only,
and stops it at the end. PostgreSQL refuses to run as root: as root the
cluster belongs to the `postgres` OS user (created by Debian's package;
`hpd-postgres` is created with useradd when it is missing).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import psycopg2
import pytest
from psycopg2 import errors as pg_errors

from conftest import REPO, apt_install, exports_with_a_dm_row_rejected, run_hpd
from hpd import synth
from hpd.loader import load_exports
from hpd.report import read_marts
from hpd.warehouse import DuckDBWarehouse, PostgresWarehouse
from mart_comparison import (
    MART_SCHEMAS,
    RELATIVE_TOLERANCE,
    Tables,
    duckdb_tables,
    plain_value,
    table_differences,
)

PG_BIN = Path(os.environ.get("HPD_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
SERVER_PACKAGE = "postgresql-15"
FALLBACK_OS_USER = "hpd-postgres"
ANALYST = "hpd_analyst"


# --------------------------------------------------------------------------- the server


@dataclass(frozen=True)
class Server:
    socket_dir: Path
    port: int

    def env(self, database: str) -> dict[str, str]:
        """The HPD_PG_* variables that point `hpd` (and dbt) at `database`."""
        return {
            "HPD_PG_HOST": str(self.socket_dir),
            "HPD_PG_PORT": str(self.port),
            "HPD_PG_USER": "postgres",
            "HPD_PG_PASSWORD": "",
            "HPD_PG_DATABASE": database,
            "HPD_PG_ANALYST_ROLE": ANALYST,
        }

    def connect(self, database: str, user: str = "postgres") -> Any:
        return psycopg2.connect(
            host=str(self.socket_dir), port=self.port, user=user, dbname=database
        )


def _ensure_server_binaries() -> None:
    """PostgreSQL 15's server programs, installed from Debian's packages when
    missing."""
    if (PG_BIN / "initdb").is_file() and (PG_BIN / "pg_ctl").is_file():
        return
    reason = f"PostgreSQL 15 server programs are missing ({PG_BIN}/initdb, pg_ctl)"
    apt_install(SERVER_PACKAGE, reason)
    if not (PG_BIN / "initdb").is_file():
        pytest.fail(f"{reason}, even after installing {SERVER_PACKAGE}")


def _os_user() -> str | None:
    """The OS user the cluster runs as: none (this one) unless root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", FALLBACK_OS_USER):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(
        [
            "useradd",
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            FALLBACK_OS_USER,
        ],
        check=True,
        capture_output=True,
    )
    return FALLBACK_OS_USER


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    _ensure_server_binaries()
    user = _os_user()
    as_user = ["runuser", "-u", user, "--"] if user else []
    # Not under pytest's temporary root: that is private to root, and the
    # server's OS user must reach its folder.
    root = Path(tempfile.mkdtemp(prefix="hpd-pg-"))
    data, log = root / "data", root / "server.log"
    if user:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    port = _free_port()

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*as_user, *command], capture_output=True, text=True, check=False, cwd=root
        )

    init = run(
        str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
        "--encoding=UTF8", "--no-locale",
    )  # fmt: skip
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"initdb failed:\n{init.stdout}{init.stderr}")
    options = (
        f"-p {port} -k {root} -c listen_addresses='' -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off"
    )
    start = run(
        str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start"
    )
    if start.returncode != 0:
        detail = log.read_text(errors="replace") if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"pg_ctl start failed:\n{start.stdout}{start.stderr}\n{detail}")
    try:
        yield Server(socket_dir=root, port=port)
    finally:
        run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def hpd_pg(server: Server, database: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """`python -m hpd ARGS` pointed at `database` on the test server."""
    return subprocess.run(
        [sys.executable, "-m", "hpd", *map(str, args)],
        cwd=REPO,
        env={**os.environ, **server.env(database)},
        capture_output=True,
        text=True,
        check=False,
    )


def setup_database(server: Server, database: str) -> None:
    done = hpd_pg(server, database, "pg-setup", "--login")
    assert done.returncode == 0, done.stdout + done.stderr


# --------------------------------------------------------------------------- comparing


def _postgres_tables(server: Server, database: str, schema: str) -> Tables:
    connection = server.connect(database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "select table_name from information_schema.tables where table_schema = %s "
                "order by 1",
                [schema],
            )
            names = [row[0] for row in cursor.fetchall()]
            tables = {}
            for name in names:
                cursor.execute(f'select * from {schema}."{name}"')
                columns = [column.name for column in cursor.description or []]
                rows = [tuple(plain_value(v) for v in row) for row in cursor.fetchall()]
                tables[name] = (columns, rows)
    finally:
        connection.close()
    return tables


def mart_differences(warehouse: Path, server: Server, database: str) -> list[str]:
    """Every difference between the marts of a DuckDB warehouse and those of
    a PostgreSQL database (tests/mart_comparison.py)."""
    problems: list[str] = []
    for schema in MART_SCHEMAS:
        problems += table_differences(
            schema,
            duckdb_tables(warehouse, schema),
            _postgres_tables(server, database, schema),
            "PostgreSQL",
        )
    return problems


def schemas(server: Server, database: str) -> set[str]:
    connection = server.connect(database)
    try:
        with connection.cursor() as cursor:
            cursor.execute("select nspname from pg_namespace")
            return {row[0] for row in cursor.fetchall()}
    finally:
        connection.close()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pg_demo(pg_server: Server, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo cohort refreshed on PostgreSQL, with dbt's unit and data tests."""
    database = "hpd_demo"
    setup_database(pg_server, database)
    folder = tmp_path_factory.mktemp("pg_demo")
    done = hpd_pg(
        pg_server,
        database,
        "run",
        "--target",
        "postgres",
        "--unit-tests",
        "--reports",
        folder / "reports",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "models, seeds and tests passed" in done.stdout
    return database


@dataclass(frozen=True)
class Generated:
    exports: Path
    warehouse: Path  # the DuckDB warehouse of the same exports
    database: str  # the PostgreSQL one
    stdout: str


@pytest.fixture(scope="module")
def pg_generated(pg_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Generated:
    """A generated cohort (300 subjects, seed 3) refreshed on DuckDB and on
    PostgreSQL (with the dbt unit tests there too)."""
    folder = tmp_path_factory.mktemp("pg_generated")
    exports = folder / "exports"
    synth.generate(300, exports, seed=3)
    warehouse = folder / "duck" / "warehouse.duckdb"
    duck = run_hpd(
        "run",
        "--exports",
        exports,
        "--warehouse",
        warehouse,
        "--reports",
        folder / "duck" / "reports",
    )
    assert duck.returncode == 0, duck.stdout + duck.stderr
    database = "hpd_generated"
    setup_database(pg_server, database)
    done = hpd_pg(
        pg_server, database, "run", "--target", "postgres", "--exports", exports, "--unit-tests",
        "--reports", folder / "pg" / "reports",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return Generated(exports, warehouse, database, done.stdout)


# --------------------------------------------------------------------------- same answers


def test_demo_cohort_marts_are_the_same_on_postgres(
    pg_server: Server, pg_demo: str, demo_warehouse: Path
) -> None:
    assert mart_differences(demo_warehouse, pg_server, pg_demo) == []
    tables = _postgres_tables(pg_server, pg_demo, "analytics")
    # The paper's flowchart, as on DuckDB.
    columns, rows = tables["cohort_attrition"]
    counts = {row[columns.index("status")]: row[columns.index("n")] for row in rows}
    assert counts == {
        "no_baseline_scan": 0,
        "no_first_evaluation": 8,
        "no_pre_baseline_scan": 12,
        "incomplete_measurements": 0,
        "evaluable": 25,
    }
    assert {"table1", "survival_summary"} <= set(tables)


def test_generated_cohort_marts_are_the_same_on_postgres(
    pg_server: Server, pg_generated: Generated
) -> None:
    assert mart_differences(pg_generated.warehouse, pg_server, pg_generated.database) == []
    rows = _postgres_tables(pg_server, pg_generated.database, "analytics")["tumor_kinetics"][1]
    assert len(rows) > 250


def test_report_reads_the_same_frames_from_both_warehouses(
    pg_server: Server, pg_generated: Generated
) -> None:
    """read_marts through the Warehouse interface: same frames, same dtypes."""
    connection = pg_server.connect(pg_generated.database)
    try:
        from_postgres = read_marts(PostgresWarehouse(connection), "tgkr")
    finally:
        connection.close()
    with duckdb.connect(str(pg_generated.warehouse), read_only=True) as con:
        from_duckdb = read_marts(DuckDBWarehouse(con), "tgkr")
    for field in ("attrition", "definitions", "definition_summary", "agreement", "kinetics",
                  "evaluable", "survival"):  # fmt: skip
        ours, theirs = getattr(from_duckdb, field), getattr(from_postgres, field)
        pd.testing.assert_frame_equal(ours, theirs, check_exact=False, rtol=RELATIVE_TOLERANCE)


def test_exports_load_into_postgres_as_text_with_file_and_row(
    pg_server: Server, pg_generated: Generated, tmp_path: Path
) -> None:
    """The loader's one code path: DuckDB reads and checks the files, COPY
    streams each raw table to the server in the same shape."""
    connection = pg_server.connect(pg_generated.database)
    try:
        target = PostgresWarehouse(connection, schema_suffix="__loadtest")
        with duckdb.connect(str(tmp_path / "load.duckdb")) as con:
            loaded = load_exports(con, pg_generated.exports, target=target)
            expected = {
                d.domain: con.execute(f"select * from raw.{d.domain}").fetchall() for d in loaded
            }
        with connection.cursor() as cursor:
            for domain in loaded:
                cursor.execute(
                    "select column_name, data_type from information_schema.columns "
                    "where table_schema = 'raw__loadtest' and table_name = %s order by ordinal_position",
                    [domain.domain],
                )
                types = dict(cursor.fetchall())
                assert types.pop("_row_number") == "bigint"
                assert set(types.values()) == {"text"}, domain.domain
                cursor.execute(f"select * from raw__loadtest.{domain.domain}")
                assert sorted(cursor.fetchall(), key=str) == sorted(
                    expected[domain.domain], key=str
                )
                assert domain.rows == len(expected[domain.domain])
    finally:
        connection.rollback()
        connection.close()


# --------------------------------------------------------------------------- publishing


def test_refresh_built_in_suffixed_schemas_and_swapped_them_in(
    pg_server: Server, pg_generated: Generated
) -> None:
    present = schemas(pg_server, pg_generated.database)
    assert {"raw", "staging", "intermediate", "analytics", "analytics_deid", "reference"} <= present
    assert not {name for name in present if name.endswith(("__building", "__previous"))}
    assert "publishing: renaming the new schemas into place" in pg_generated.stdout
    # An exports refresh has no demo seeds, as in a DuckDB warehouse.
    assert "demo" not in present


def test_a_failed_refresh_leaves_the_published_schemas_as_they_were(
    pg_server: Server, pg_generated: Generated, tmp_path: Path
) -> None:
    before = _postgres_tables(pg_server, pg_generated.database, "analytics")
    bad = exports_with_a_dm_row_rejected(pg_generated.exports, tmp_path / "bad")
    done = hpd_pg(
        pg_server, pg_generated.database, "run", "--target", "postgres", "--exports", bad,
        "--reports", tmp_path / "reports",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "dm.csv, row 1, column RFXSTDTC: invalid_date" in done.stderr
    assert _postgres_tables(pg_server, pg_generated.database, "analytics") == before
    leftovers = {
        name
        for name in schemas(pg_server, pg_generated.database)
        if name.endswith(("__building", "__previous"))
    }
    assert leftovers == set()
    assert not (tmp_path / "reports").exists()


def test_a_second_refresh_of_the_same_database_exits_3(
    pg_server: Server, pg_demo: str, tmp_path: Path
) -> None:
    holder = pg_server.connect(pg_demo)
    try:
        from hpd.postgres import LOCK_KEY

        with holder.cursor() as cursor:
            cursor.execute("select pg_advisory_lock(%s)", [LOCK_KEY])
        started = time.monotonic()
        done = hpd_pg(
            pg_server, pg_demo, "run", "--target", "postgres", "--reports", tmp_path / "r"
        )
    finally:
        holder.close()
    assert done.returncode == 3, done.stdout + done.stderr
    assert "another refresh of this warehouse is running" in done.stderr
    assert time.monotonic() - started < 60


def test_a_database_that_sorts_text_otherwise_is_refused(pg_server: Server, tmp_path: Path) -> None:
    """An English collation orders 'R1-T01' and 'R1T01' unlike DuckDB: refused
    (exit 2) with the way out, before anything is built."""
    admin = pg_server.connect("postgres")
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(
                "create database hpd_locale template template0 encoding 'UTF8' "
                "locale_provider icu icu_locale 'en-US' lc_collate 'C' lc_ctype 'C'"
            )
    finally:
        admin.close()
    done = hpd_pg(
        pg_server, "hpd_locale", "run", "--target", "postgres", "--reports", tmp_path / "r"
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "ICU en-US" in done.stderr
    assert "LC_COLLATE 'C'" in done.stderr


# --------------------------------------------------------------------------- the analyst role


@pytest.fixture
def analyst(pg_server: Server, pg_generated: Generated) -> Iterator[Callable[[str], Any]]:
    """Run one statement as the analyst role (a fresh transaction each)."""
    connection = pg_server.connect(pg_generated.database, user=ANALYST)
    connection.autocommit = True

    def run(sql: str) -> Any:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall() if cursor.description else None

    try:
        yield run
    finally:
        connection.close()


@pytest.mark.parametrize(
    "mart",
    ["tumor_kinetics", "hpd_classification", "cohort_attrition", "table1", "survival_summary"],
)
def test_the_analyst_role_reads_the_marts(analyst: Callable[[str], Any], mart: str) -> None:
    rows = analyst(f"select count(*) from analytics.{mart}")
    assert rows[0][0] > 0


@pytest.mark.parametrize(
    "relation", ["raw.dm", "staging.stg_dm", "intermediate.int_subjects", "reference.drug_classes"]
)
def test_the_analyst_role_cannot_read_anything_else(
    analyst: Callable[[str], Any], relation: str
) -> None:
    with pytest.raises(pg_errors.InsufficientPrivilege):
        analyst(f"select count(*) from {relation}")


def test_the_analyst_role_cannot_write(analyst: Callable[[str], Any]) -> None:
    with pytest.raises(pg_errors.InsufficientPrivilege):
        analyst("insert into analytics.cohort_attrition (status) values ('x')")
    with pytest.raises(pg_errors.InsufficientPrivilege):
        analyst("delete from analytics.table1")
    with pytest.raises(pg_errors.InsufficientPrivilege):
        analyst("create table analytics.mine (x int)")

"""Where the dbt project lives and what it declares (settings, SDTM contract)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import yaml

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEMO_DIR = PROJECT_DIR / "seeds" / "demo"

# DuckDB's memory limit for a refresh (load, dbt build, checks, outputs). Past
# it DuckDB spills to a temporary folder beside the file being built, so a
# nightly refresh of a million subjects stays within an ordinary machine's
# memory; HPD_DUCKDB_MEMORY_LIMIT overrides it (README, "Performance").
MEMORY_LIMIT_VARIABLE = "HPD_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "3GB"

# Vars of dbt_project.yml that are part of the contract, not user settings.
_INTERNAL_VARS = {"sdtm_domains", "input"}


@dataclass(frozen=True)
class DomainSpec:
    """One SDTM domain: its file name stem and the columns the warehouse reads."""

    name: str
    file_required: bool
    required: tuple[str, ...]
    optional: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


@cache
def project_vars() -> dict[str, Any]:
    with (PROJECT_DIR / "dbt_project.yml").open(encoding="utf-8") as handle:
        return dict(yaml.safe_load(handle)["vars"])


def sdtm_domains() -> list[DomainSpec]:
    return [
        DomainSpec(
            name=name,
            file_required=bool(spec["file_required"]),
            required=tuple(spec["required"]),
            optional=tuple(spec["optional"]),
        )
        for name, spec in project_vars()["sdtm_domains"].items()
    ]


def default_settings() -> dict[str, Any]:
    """The settings of SPEC §2-3 with their defaults, as dbt vars."""
    return {k: v for k, v in project_vars().items() if k not in _INTERNAL_VARS}


def duckdb_memory_limit() -> str:
    """DuckDB's memory limit for refreshes (`HPD_DUCKDB_MEMORY_LIMIT`, e.g.
    `6GB`; default 3GB)."""
    return os.environ.get(MEMORY_LIMIT_VARIABLE, "").strip() or DEFAULT_MEMORY_LIMIT


def limit_duckdb_memory(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Apply the refresh's memory limit to `con`'s database. Set, not passed
    as configuration when connecting: dbt's connection to the same file may
    still be open in this process, and DuckDB refuses a second connection
    with another configuration."""
    con.execute(f"set memory_limit = '{duckdb_memory_limit()}'")
    return con

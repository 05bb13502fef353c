"""Settings of SPEC §2-3: defaults from dbt_project.yml, overridden by a
config file (TOML, a `[settings]` table) and then by `--set name=value`."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml

from hpd.errors import UsageError
from hpd.project import default_settings

READERS = ("investigator", "independent")


def parse_assignment(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise UsageError(f"--set {text!r}: expected name=value")
    return name.strip(), yaml.safe_load(value)


def read_config(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError as error:
        raise UsageError(f"{path}: config file does not exist") from error
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path}: not valid TOML: {error}") from error
    settings = document.get("settings", {})
    if not isinstance(settings, dict):
        raise UsageError(f"{path}: [settings] must be a table")
    return settings


def resolve_settings(
    config: Path | None, assignments: list[str], reader: str | None
) -> dict[str, Any]:
    """The overrides in force, checked against the known settings."""
    defaults = default_settings()
    overrides: dict[str, Any] = {}
    if config is not None:
        overrides.update(read_config(config))
    overrides.update(parse_assignment(text) for text in assignments)
    if reader is not None:
        overrides["reader"] = reader
    for name, value in overrides.items():
        if name not in defaults:
            known = ", ".join(sorted(defaults))
            raise UsageError(f"unknown setting {name!r}; known settings: {known}")
        default = defaults[name]
        if isinstance(default, int | float) and not isinstance(value, int | float):
            raise UsageError(f"setting {name}: expected a number, got {value!r}")
    if overrides.get("reader", defaults["reader"]) not in READERS:
        raise UsageError(f"setting reader: expected one of {', '.join(READERS)}")
    return overrides

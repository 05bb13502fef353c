"""Where the dbt project lives and what it declares (settings, SDTM contract)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEMO_DIR = PROJECT_DIR / "seeds" / "demo"

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

"""Run the dbt project in-process against one warehouse file."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbt.cli.main import dbtRunner

from hpd.errors import DataError
from hpd.project import PROJECT_DIR


@dataclass
class BuildOutcome:
    success: bool
    nodes: int = 0
    failures: list[str] = field(default_factory=list)


def _describe_failure(result: Any) -> str:
    node = result.node
    name = getattr(node, "relation_name", None) or node.name
    message = (result.message or "").strip().splitlines()
    return f"{node.resource_type} {name}: {message[0] if message else result.status}"


def run_dbt(
    command: str | list[str],
    warehouse: Path,
    variables: dict[str, Any],
    work_dir: Path,
    extra_args: list[str] | None = None,
    on_node: Callable[[str, str], None] | None = None,
    target: str | None = None,
) -> BuildOutcome:
    """`dbt <command>` on `warehouse` with `variables`; logs and artifacts in
    `work_dir`. `command` is one word (`build`) or several (`docs generate`).
    `target` picks an output of profiles.yml (`postgres`: the server named by
    the HPD_PG_* variables; `warehouse` is then not used)."""
    os.environ["HPD_WAREHOUSE_PATH"] = str(warehouse)
    args = [
        *([command] if isinstance(command, str) else command),
        *(["--target", target] if target else []),
        "--project-dir",
        str(PROJECT_DIR),
        "--profiles-dir",
        str(PROJECT_DIR),
        "--target-path",
        str(work_dir / "target"),
        "--log-path",
        str(work_dir / "logs"),
        "--vars",
        json.dumps(variables),
        "--quiet",
        *(extra_args or []),
    ]

    def callback(event: Any) -> None:
        if on_node is None or event.info.name != "NodeFinished":
            return
        data = event.data
        on_node(data.node_info.unique_id, data.run_result.status)

    result = dbtRunner(callbacks=[callback]).invoke(args)
    outcome = BuildOutcome(success=bool(result.success))
    if result.exception is not None:
        outcome.failures.append(f"dbt: {result.exception}".splitlines()[0])
    results = getattr(result.result, "results", None) or []
    outcome.nodes = len(results)
    outcome.failures.extend(
        _describe_failure(r) for r in results if str(r.status) in {"error", "fail"}
    )
    return outcome


def build_selection(unit_tests: bool, from_exports: bool) -> list[str]:
    """What a refresh's `dbt build` leaves out: the unit tests unless asked
    for, and the demo seeds when the exports are the input."""
    extra = [] if unit_tests else ["--exclude-resource-type", "unit_test"]
    if from_exports:
        extra += ["--exclude", "path:seeds/demo"]
    return extra


def failing_nodes(progress: Callable[[str], None]) -> Callable[[str, str], None]:
    """A node callback that reports each failing model or test as it happens."""

    def on_node(unique_id: str, status: str) -> None:
        if status in {"error", "fail"}:
            progress(f"  {status.upper()}: {unique_id}")

    return on_node


def build_failed(outcome: BuildOutcome, work_dir: Path) -> DataError:
    """The one-line error of a failed build, naming its first failing node."""
    detail = outcome.failures[0] if outcome.failures else "see the dbt log"
    return DataError(
        f"the build failed ({len(outcome.failures)} failing nodes; first: {detail}); "
        f"log: {work_dir / 'logs' / 'dbt.log'}"
    )

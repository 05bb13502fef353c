"""Run the dbt project in-process against one warehouse file."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbt.cli.main import dbtRunner

from hpd.errors import DataError
from hpd.project import MEMORY_LIMIT_VARIABLE, PROJECT_DIR, duckdb_memory_limit


@dataclass
class BuildOutcome:
    success: bool
    nodes: int = 0
    failures: list[str] = field(default_factory=list)


@dataclass
class NodeCounter:
    """The nodes of a running dbt command, for progress lines: how many it
    selected (dbt's ConcurrencyLine event carries the count of its run
    queue) and how many have finished. dbt's threads update it."""

    total: int | None = None
    done: int = 0
    failing: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def started(self, total: int) -> None:
        with self._lock:
            self.total = total

    def finished(self, status: str) -> None:
        with self._lock:
            self.done += 1
            if status in {"error", "fail"}:
                self.failing += 1

    def describe(self) -> str:
        if self.total is None:
            return "reading the project (no node started yet)"
        failing = f", {self.failing} failing" if self.failing else ""
        return f"{self.done} of {self.total} nodes done{failing}"


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
    counter: NodeCounter | None = None,
) -> BuildOutcome:
    """`dbt <command>` on `warehouse` with `variables`; logs and artifacts in
    `work_dir`. `command` is one word (`build`) or several (`docs generate`).
    `target` picks an output of profiles.yml (`postgres`: the server named by
    the HPD_PG_* variables; `warehouse` is then not used). `counter` follows
    the nodes as they finish.

    dbt writes nothing to the console (its log file has everything): the
    `hpd` command's own lines name the failing nodes, so output to cron mail
    or a log file stays one format, without dbt's colour codes.

    A KeyboardInterrupt (Ctrl-C, or SIGTERM as `hpd.runs.Terminated`) that
    dbt caught after cancelling its queries is raised again here: the run
    was stopped, the data did not fail."""
    os.environ["HPD_WAREHOUSE_PATH"] = str(warehouse)
    os.environ[MEMORY_LIMIT_VARIABLE] = duckdb_memory_limit()
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
        "--log-level",
        "none",
        # Said explicitly: dbt would otherwise apply the console's level to the file too.
        "--log-level-file",
        "debug",
        *(extra_args or []),
    ]

    def callback(event: Any) -> None:
        name = event.info.name
        if name == "ConcurrencyLine" and counter is not None:
            counter.started(int(event.data.node_count))
        if name != "NodeFinished":
            return
        data = event.data
        if counter is not None:
            counter.finished(data.run_result.status)
        if on_node is not None:
            on_node(data.node_info.unique_id, data.run_result.status)

    result = dbtRunner(callbacks=[callback]).invoke(args)
    if isinstance(result.exception, KeyboardInterrupt):
        raise result.exception
    outcome = BuildOutcome(success=bool(result.success))
    if result.exception is not None:
        outcome.failures.append(f"dbt: {result.exception}".splitlines()[0])
    results = getattr(result.result, "results", None) or []
    outcome.nodes = len(results)
    outcome.failures.extend(
        _describe_failure(r) for r in results if str(r.status) in {"error", "fail"}
    )
    return outcome


def build_selection(unit_tests: bool, from_exports: bool, fail_fast: bool = False) -> list[str]:
    """What a refresh's `dbt build` leaves out: the unit tests unless asked
    for, and the demo seeds when the exports are the input. `fail_fast`:
    stop at the first failing node (the rest are reported as skipped)."""
    extra = [] if unit_tests else ["--exclude-resource-type", "unit_test"]
    if from_exports:
        extra += ["--exclude", "path:seeds/demo"]
    if fail_fast:
        extra.append("--fail-fast")
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

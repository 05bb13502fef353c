"""What a refresh leaves for cron and orchestrators: progress lines with the
elapsed time and the stage, the seconds and peak memory of each stage, and a
run record per `hpd run` (`runs/<run_id>/`: run.json, hpd.log, dbt's
run_results.json and dbt.log), read back by `hpd status`.

See docs/operations.md for the record's fields.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import resource
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpd.warehouse import Warehouse

Emit = Callable[[str], None]

# Where a warehouse can be (the record's `target`). Defined here, not in
# hpd.refresh, so that `hpd status` starts without importing dbt.
TARGETS = ("duckdb", "postgres", "spark")

# Stage names, in the order a refresh goes through them (`copy`: PostgreSQL and
# Spark only: the exports handed to the server or to Spark).
STAGES = (
    "load",
    "quality_exports",
    "copy",
    "dbt_build",
    "quality_marts",
    "statistics_report",
    "outputs",
    "docs",
    "publish",
)
RUN_STATUSES = ("success", "failed", "locked", "error", "interrupted")
KEEP_RUNS = 100
RUN_ID_FORMAT = "%Y%m%dT%H%M%S%fZ"
# Written when a run starts and removed when its run.json is written: a
# folder that still has it belongs to a run in progress or one killed
# outright (SIGKILL, the out-of-memory killer), which `hpd status` tells apart.
STARTED_FILE = "started.json"
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


# --------------------------------------------------------------------------- memory


_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def reset_peak_rss() -> bool:
    """Reset the process's resident-memory high-water mark (Linux: "5" to
    /proc/self/clear_refs); False where that is not possible."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_rss_bytes() -> int:
    """Peak resident memory since the last reset (VmHWM), or, where /proc is
    not there, since the process started (getrusage)."""
    with contextlib.suppress(OSError):
        match = re.search(r"^VmHWM:\s+(\d+)\s+kB", _STATUS.read_text(), re.MULTILINE)
        if match:
            return int(match.group(1)) * 1024
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale


@dataclass
class Stage:
    """Time and peak memory of one stage: `with Stage("load") as stage: ...`."""

    name: str
    seconds: float = 0.0
    peak_rss_bytes: int = 0
    _started: float = field(default=0.0, repr=False)

    def __enter__(self) -> Stage:
        reset_peak_rss()
        self._started = time.monotonic()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.seconds = time.monotonic() - self._started
        self.peak_rss_bytes = peak_rss_bytes()

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seconds": round(self.seconds, 6),
            "peak_rss_bytes": self.peak_rss_bytes,
        }


# --------------------------------------------------------------------------- the monitor


class Monitor:
    """What one refresh reports as it goes: progress lines, its stages, and
    the counts a run record keeps (rows per domain, subjects).

    `decorate` prefixes each line with the elapsed time and the stage
    (`[  12.3s dbt_build] hpd: ...`), as `hpd run` prints it; without it the
    line goes to `emit` as the refresh wrote it. Lines may come from dbt's
    threads and the ticker, hence the lock."""

    def __init__(
        self,
        emit: Emit = print,
        *,
        decorate: bool = False,
        progress_every: float = 10.0,
        run_dir: Path | None = None,
    ) -> None:
        self.emit = emit
        self.decorate = decorate
        self.progress_every = progress_every
        self.run_dir = run_dir
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.stages: list[Stage] = []
        self.current: str | None = None
        self.rows: dict[str, int] = {}
        self.subjects: int | None = None
        self.work_dir: Path | None = None
        # Set once the new warehouse is in place: an interrupt after that
        # does not undo the refresh.
        self.published = False
        self._dbt_log_offset = 0
        self._lock = threading.Lock()

    def format(self, text: str) -> str:
        if not self.decorate:
            return text
        elapsed = time.monotonic() - self.started
        where = f"{elapsed:6.1f}s" + (f" {self.current}" if self.current else "")
        return f"[{where}] hpd: {text}"

    def progress(self, text: str) -> None:
        # Once a stop is asked for, dbt's threads report the queries it
        # cancels as errors: not news, and not the data's fault.
        if stop_requested() and threading.current_thread() is not threading.main_thread():
            return
        with self._lock:
            self.emit(self.format(text))

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[Stage]:
        """Time a stage (recorded even when it fails: that is where a run stopped)."""
        stage = Stage(name)
        self.current = name
        try:
            with stage:
                yield stage
        finally:
            self.stages.append(stage)
            self.current = None

    @property
    def peak_rss_bytes(self) -> int:
        if self.stages:
            return max(stage.peak_rss_bytes for stage in self.stages)
        return peak_rss_bytes()

    @contextlib.contextmanager
    def ticker(self, describe: Callable[[], str]) -> Iterator[None]:
        """A progress line every `progress_every` seconds while the block runs
        (0: none), so a long build shows it is alive; plain lines, no
        carriage returns, so a log file or cron mail reads as well as a terminal."""
        if self.progress_every <= 0:
            yield
            return
        stop = threading.Event()

        def tick() -> None:
            while not stop.wait(self.progress_every):
                self.progress(describe())

        thread = threading.Thread(target=tick, name="hpd-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def use_work_dir(self, work_dir: Path) -> None:
        """Where dbt writes its logs and artifacts for this run; dbt appends to
        its log, so remember where this run's part of it starts."""
        self.work_dir = work_dir
        with contextlib.suppress(OSError):
            self._dbt_log_offset = (work_dir / "logs" / "dbt.log").stat().st_size

    def keep_dbt_results(self) -> None:
        """Copy dbt's run_results.json into the run folder: called right after
        the build, since `dbt docs generate` later writes its own over it. A
        file older than this run (a build that never started) is not copied."""
        if self.run_dir is None or self.work_dir is None:
            return
        results = self.work_dir / "target" / "run_results.json"
        with contextlib.suppress(OSError):
            if results.stat().st_mtime >= self.started_wall - 1:
                shutil.copyfile(results, self.run_dir / "run_results.json")

    def keep_dbt_log(self) -> None:
        """Copy this run's part of dbt's log into the run folder. dbt rotates
        its log at 10 MB (dbt.log.1, ...): a log smaller than where this run
        started was rotated, and the run's start is in dbt.log.1."""
        if self.run_dir is None or self.work_dir is None:
            return
        log = self.work_dir / "logs" / "dbt.log"
        if not log.is_file():
            return
        with contextlib.suppress(OSError), (self.run_dir / "dbt.log").open("wb") as out:
            offset = self._dbt_log_offset
            if log.stat().st_size < offset:
                rotated = log.with_name("dbt.log.1")
                if rotated.is_file():
                    with rotated.open("rb") as source:
                        source.seek(offset)
                        shutil.copyfileobj(source, out)
                offset = 0
            with log.open("rb") as source:
                source.seek(offset)
                shutil.copyfileobj(source, out)


def mart_counts(warehouse: Warehouse) -> dict[str, int]:
    """Rows of every table of `analytics`, by name."""
    counts = {}
    for name in warehouse.tables("analytics"):
        rows = warehouse.rows(f"select count(*) from {warehouse.table('analytics', name)}")
        counts[name] = int(rows[0][0]) if rows else 0
    return counts


def csv_rows(path: Path) -> int:
    """Data rows of a CSV file (the header excluded)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return max(sum(1 for _ in csv.reader(handle)) - 1, 0)


# --------------------------------------------------------------------------- SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as an interrupt so that it takes the clean-up path of
    Ctrl-C everywhere (dbt cancels its queries on a KeyboardInterrupt too)."""


class StopSignals:
    """While active, the first SIGTERM raises `Terminated` and the first
    SIGINT `KeyboardInterrupt` in the main thread; later ones are ignored so
    that the clean-up the first one starts runs to its end. Inside
    `critical_section()` (the renames that publish a refresh) a signal is
    held back and raised when the section ends, so publication is never
    left half done. `disarm()` once the work is done: a signal while the
    run record is being written is then only noted."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.armed = False
        self._held: int | None = None
        self._critical = 0
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            return
        self.received = signum
        if not self.armed:
            return
        if self._critical:
            self._held = signum
            return
        self._raise(signum)

    @staticmethod
    def _raise(signum: int) -> None:
        if signum == signal.SIGTERM:
            raise Terminated()
        raise KeyboardInterrupt()

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        self._critical += 1
        try:
            yield
        finally:
            self._critical -= 1
        if not self._critical and self._held is not None and self.armed:
            held, self._held = self._held, None
            self._raise(held)

    def disarm(self) -> None:
        self.armed = False

    def __enter__(self) -> StopSignals:
        global _ACTIVE
        # Signal handlers can only be set from the main thread.
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._handle)
        self.armed = True
        _ACTIVE = self
        return self

    def __exit__(self, *exc: object) -> None:
        global _ACTIVE
        self.armed = False
        _ACTIVE = None
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()


_ACTIVE: StopSignals | None = None


def stop_requested() -> bool:
    """Whether a SIGTERM or Ctrl-C has come while `StopSignals` is active."""
    return _ACTIVE is not None and _ACTIVE.received is not None


@contextlib.contextmanager
def critical_section() -> Iterator[None]:
    """Hold back SIGTERM and Ctrl-C while the block runs (see `StopSignals`);
    nothing to hold back when no `StopSignals` is active."""
    if _ACTIVE is None:
        yield
        return
    with _ACTIVE.critical():
        yield


# --------------------------------------------------------------------------- run records


def new_run_id(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime(RUN_ID_FORMAT)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="microseconds")


class RunRecord:
    """One `hpd run`'s folder `runs/<run_id>/`: hpd.log as the run prints it,
    dbt's run_results.json and log, and run.json when the run ends."""

    def __init__(
        self,
        runs_dir: Path,
        *,
        target: str,
        warehouse: str,
        exports: str | None,
        progress_every: float = 10.0,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
    ) -> None:
        self.runs_dir = runs_dir
        self.target = target
        self.warehouse = warehouse
        self.exports = exports
        self.settings: dict[str, Any] = {}
        self.marts: dict[str, int] = {}
        self._stdout = stdout or sys.stdout
        self._stderr = stderr or sys.stderr
        runs_dir.mkdir(parents=True, exist_ok=True)
        # Run ids sort by time; two runs started in the same microsecond
        # (hardly possible) take the next one.
        while True:
            self.run_id = new_run_id()
            self.dir = runs_dir / self.run_id
            try:
                self.dir.mkdir()
                break
            except FileExistsError:
                time.sleep(1e-5)
        self._log = (self.dir / "hpd.log").open("a", encoding="utf-8")
        self.monitor = Monitor(
            self.out, decorate=True, progress_every=progress_every, run_dir=self.dir
        )
        started = {
            "run_id": self.run_id,
            "started_at": _iso(self.monitor.started_wall),
            "pid": os.getpid(),
            "target": target,
            "warehouse": warehouse,
            "exports": exports,
        }
        _write_json(self.dir / STARTED_FILE, started)
        prune_runs(runs_dir, KEEP_RUNS)

    def _write(self, stream: IO[str], line: str) -> None:
        print(line, file=stream, flush=True)
        if not self._log.closed:
            self._log.write(line + "\n")
            self._log.flush()

    def out(self, line: str) -> None:
        """A progress or summary line: stdout and hpd.log."""
        self._write(self._stdout, line)

    def error(self, line: str) -> None:
        """The one-line error: stderr and hpd.log."""
        self._write(self._stderr, line)

    def finish(self, status: str, exit_code: int, message: str | None) -> dict[str, Any]:
        """Write run.json (atomically: a reader never sees half of it)."""
        assert status in RUN_STATUSES, status
        monitor = self.monitor
        ended = time.time()
        record = {
            "run_id": self.run_id,
            "started_at": _iso(monitor.started_wall),
            "ended_at": _iso(ended),
            "seconds": round(time.monotonic() - monitor.started, 3),
            "status": status,
            "exit_code": exit_code,
            "message": message,
            "target": self.target,
            "warehouse": self.warehouse,
            "exports": self.exports,
            "settings": self.settings,
            "rows": dict(monitor.rows),
            "subjects": monitor.subjects,
            "marts": self.marts if status == "success" else {},
            "stages": [stage.as_dict() for stage in monitor.stages],
            "peak_rss_bytes": monitor.peak_rss_bytes,
        }
        monitor.keep_dbt_log()
        _write_json(self.dir / "run.json", record)
        (self.dir / STARTED_FILE).unlink(missing_ok=True)
        self._log.close()
        return record


def _write_json(path: Path, document: dict[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    # default=str: a setting given as a date (`--set x=2020-01-01`) stays readable.
    temporary.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def prune_runs(runs_dir: Path, keep: int = KEEP_RUNS) -> None:
    """Keep the newest `keep` run folders (their names sort by time)."""
    folders = sorted(p for p in runs_dir.iterdir() if p.is_dir() and _is_run_id(p.name))
    for old in folders[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _is_run_id(name: str) -> bool:
    return re.fullmatch(r"\d{8}T\d{12}Z", name) is not None


# --------------------------------------------------------------------------- reading them back


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: it exists
    return True


def read_runs(runs_dir: Path, warehouse: str | None = None) -> list[dict[str, Any]]:
    """The run records of a folder, newest first; those of `warehouse` only
    when given. A run without run.json is shown as `running` while its
    process lives, else `killed` (ended by SIGKILL or the out-of-memory
    killer, before it could write its record)."""
    if not runs_dir.is_dir():
        return []
    records = []
    for folder in sorted(runs_dir.iterdir(), reverse=True):
        if not folder.is_dir() or not _is_run_id(folder.name):
            continue
        record = _read_json(folder / "run.json")
        if record is None:
            started = _read_json(folder / STARTED_FILE)
            if started is None:
                continue
            pid = started.pop("pid", None)
            running = isinstance(pid, int) and _alive(pid)
            record = {
                **started,
                "status": "running" if running else "killed",
                "exit_code": None,
                "message": None if running else "no run record: the process was killed",
                "stages": [],
            }
        if warehouse is not None and record.get("warehouse") != warehouse:
            continue
        records.append(record)
    return records


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None

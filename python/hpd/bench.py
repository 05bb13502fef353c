"""`make bench`: how fast, and in how much memory, the warehouse refreshes.

For each cohort size (`--sizes`, default 1k, 10k, 100k and 1M subjects) the
benchmark takes the exports of `hpd synth --subjects N` (generated once into
`--data`, default `build/bench/data/synth-N`, and kept; an existing folder
`<data>/sN` of the same cohort is used as it is), then runs, each in a child
process of its own so that its wall time and peak memory (`ru_maxrss` of that
child, from `os.wait4`) are its alone:

- `hpd run --exports ... --warehouse <fresh folder>/warehouse.duckdb ...`, as a
  user or cron would; the seconds and peak memory of each stage come from the
  run record it writes beside the warehouse (`runs/<run_id>/run.json`);
- every implementation of `IMPLEMENTATIONS` on the same files, as
  `python -m hpd.bench --baseline KEY --exports DIR --output FILE.parquet`:
  the hand-written DuckDB SQL script (`hpd.baseline_sql`: the engine's own
  speed, the floor), straightforward pandas (`hpd.baseline_pandas_plain`: what
  an analyst would write instead, a function per subject; the pandas of the
  targets) and tuned, vectorised pandas (`hpd.baseline_pandas`). A child times the computation alone, not the
  interpreter's start, the imports or the writing of its result.

Before any figure is printed, the core kinetics table of the warehouse
(`analytics.tumor_kinetics`) is compared with each implementation's by
`hpd.core_kinetics.compare`; a difference is printed and the benchmark exits 1
without figures. A crashed run exits 1 too. Otherwise it prints a table (sizes
across, measures down), the issue's targets with the measured values and PASS
or FAIL, and the machine, and writes `<out>/bench.csv` and `<out>/bench.png`
(time against subjects, log-log). A failed target does not change the exit
status (0): this is a report, not a test.

Comparisons, stated in the output as here:
- *dbt build / hand SQL*: the run record's `dbt_build` stage against the
  script. The script reads the CSV files itself, while dbt starts from the
  loaded `raw` tables but builds every mart and runs dbt's data tests.
- *pandas / hpd core*, where hpd core = the `load` + `dbt_build` stages: all
  the warehouse does to get from the files to `analytics.tumor_kinetics` (and
  more: every other mart and the data tests), without the quality gate,
  statistics, report, BI outputs and docs, which pandas does not do at all.
  `pandas / hpd run` (the whole refresh, interpreter start included) is
  printed beside it as the most conservative view.
- Growth from 100k to 1M: t(1M) / t(100k) of the whole `hpd run`, against 10
  (linear); the exponent is log(t1M / t100k) / log 10.

With `--repeat K` each run is made K times and the fastest is kept (the
usual way to see through the noise of a shared machine); memory is that
run's. Sizes accept `k` and `M` (`--sizes 1k,10k`).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from hpd.core_kinetics import COLUMNS, compare
from hpd.loader import find_export

DEFAULT_SIZES = (1_000, 10_000, 100_000, 1_000_000)
DEFAULT_DATA = Path("build/bench/data")
DEFAULT_OUT = Path("build/bench")
REQUIRED_DOMAINS = ("dm", "ex", "tu", "tr")
MIB = 1024 * 1024
GIB = 1024 * MIB

# A child's exit status for "out of memory" (MemoryError); the kernel's OOM
# killer ends one with SIGKILL instead. Either is recorded, not fatal.
EXIT_OUT_OF_MEMORY = 3

OK, SKIPPED, OUT_OF_MEMORY, CACHED, GENERATED = (
    "ok",
    "skipped",
    "out of memory",
    "cached",
    "generated",
)


# ---------------------------------------------------------------------------
# The implementations compared with the warehouse


@dataclass(frozen=True)
class Implementation:
    """One way to compute the core kinetics table from a folder of exports,
    run by the benchmark in a child process (`--baseline KEY`). `compute`
    returns the seconds of the computation alone and the table. Another
    engine (Spark, ...) is one more entry of `IMPLEMENTATIONS`."""

    key: str
    label: str
    compute: Callable[[Path], tuple[float, pd.DataFrame]]


def _hand_sql(folder: Path) -> tuple[float, pd.DataFrame]:
    from hpd import baseline_sql

    with duckdb.connect() as con:
        started = time.perf_counter()
        baseline_sql.run(folder, con)
        seconds = time.perf_counter() - started
        # Fetching into pandas is the benchmark's need, not the engine's work.
        frame = con.execute(f"select {', '.join(COLUMNS)} from {baseline_sql.TABLE}").df()
    return seconds, frame


def _pandas(folder: Path) -> tuple[float, pd.DataFrame]:
    from hpd import baseline_pandas_plain

    started = time.perf_counter()
    frame = baseline_pandas_plain.core_kinetics(folder)
    return time.perf_counter() - started, frame


def _pandas_tuned(folder: Path) -> tuple[float, pd.DataFrame]:
    from hpd import baseline_pandas

    started = time.perf_counter()
    frame = baseline_pandas.core_kinetics(folder)
    return time.perf_counter() - started, frame


def _spark(folder: Path) -> tuple[float, pd.DataFrame]:
    """The whole `hpd run --target spark` on the files (a local Spark session,
    started inside the timing, with the defaults of README "Spark"), its
    kinetics read back from the refresh's Parquet copy of the marts."""
    import tempfile

    from hpd import cli
    from hpd.spark import stop_session

    with tempfile.TemporaryDirectory(prefix="hpd-bench-spark-") as scratch:
        root = Path(scratch)
        started = time.perf_counter()
        code = cli.main(
            [
                "run", "--target", "spark", "--exports", str(folder),
                "--spark-warehouse", str(root / "warehouse"),
                "--reports", str(root / "reports"), "--parquet", str(root / "parquet"),
            ]
        )  # fmt: skip
        seconds = time.perf_counter() - started
        stop_session()
        if code != 0:
            raise BenchError(f"hpd run --target spark exited with status {code}")
        kinetics = root / "parquet" / "latest" / "tumor_kinetics.parquet"
        with duckdb.connect() as con:
            frame = con.execute(
                f"select {', '.join(COLUMNS)} from read_parquet(?)", [str(kinetics)]
            ).df()
    return seconds, frame


# `pandas` is the straightforward implementation the targets name (a function
# per subject, as an analyst writes it); `pandas_tuned` is a vectorised one by
# someone who knows pandas well, shown beside it so the comparison is fair.
IMPLEMENTATIONS: tuple[Implementation, ...] = (
    Implementation("sql", "hand SQL", _hand_sql),
    Implementation("pandas", "pandas", _pandas),
    Implementation("pandas_tuned", "pandas (tuned)", _pandas_tuned),
    # The same refresh on the other engine that runs on one machine: the
    # cost of the switch, whole refresh against whole refresh.
    Implementation("spark", "hpd run on Spark", _spark),
)
BY_KEY = {implementation.key: implementation for implementation in IMPLEMENTATIONS}


# ---------------------------------------------------------------------------
# Measurements


@dataclass(frozen=True)
class Measurement:
    """Wall seconds and peak RSS of one run (None when not measured)."""

    seconds: float | None
    peak_rss_bytes: int | None
    status: str = OK
    note: str = ""


@dataclass
class SizeResult:
    subjects: int
    tr_rows: int | None
    synth: Measurement
    hpd_run: Measurement
    # The run record's stages by name, in its order; empty without a record.
    stages: dict[str, Measurement] = field(default_factory=dict)
    baselines: dict[str, Measurement] = field(default_factory=dict)
    repeats: int = 1


# (key, label, run-record stages it sums)
STAGE_GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("load", "load", ("load",)),
    ("quality", "quality (exports + marts)", ("quality_exports", "quality_marts")),
    ("dbt_build", "dbt build", ("dbt_build",)),
    ("statistics_report", "statistics + report", ("statistics_report",)),
    ("outputs", "outputs + docs + publish", ("outputs", "docs", "publish")),
)
CORE_STAGES = ("load", "dbt_build")


def stage_group(result: SizeResult, stages: Iterable[str]) -> Measurement | None:
    """The summed seconds (and the largest peak) of the named stages that the
    run record has; None when it has none of them."""
    found = [result.stages[name] for name in stages if name in result.stages]
    if not found:
        return None
    peaks = [m.peak_rss_bytes for m in found if m.peak_rss_bytes is not None]
    return Measurement(
        seconds=sum(m.seconds or 0.0 for m in found),
        peak_rss_bytes=max(peaks) if peaks else None,
    )


def hpd_core_seconds(result: SizeResult) -> float | None:
    """load + dbt build, when the run record has both."""
    if not all(name in result.stages for name in CORE_STAGES):
        return None
    return sum(result.stages[name].seconds or 0.0 for name in CORE_STAGES)


def unstaged_seconds(result: SizeResult) -> float | None:
    """The run's wall time outside its recorded stages: the interpreter's
    start, imports (dbt's are heavy), the lock, the run record."""
    if not result.stages or result.hpd_run.seconds is None:
        return None
    return result.hpd_run.seconds - sum(m.seconds or 0.0 for m in result.stages.values())


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def baseline_seconds(result: SizeResult, key: str) -> float | None:
    measurement = result.baselines.get(key)
    return measurement.seconds if measurement is not None and measurement.status == OK else None


def dbt_over_sql(result: SizeResult) -> float | None:
    dbt = result.stages.get("dbt_build")
    return _ratio(dbt.seconds if dbt else None, baseline_seconds(result, "sql"))


def pandas_over_core(result: SizeResult) -> float | None:
    return _ratio(baseline_seconds(result, "pandas"), hpd_core_seconds(result))


def pandas_over_run(result: SizeResult) -> float | None:
    return _ratio(baseline_seconds(result, "pandas"), result.hpd_run.seconds)


# ---------------------------------------------------------------------------
# Targets of the issue


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    measured: str
    verdict: str  # PASS, FAIL or "not measured"


def _verdict(value: float | None, passes: Callable[[float], bool]) -> str:
    if value is None:
        return "not measured"
    return "PASS" if passes(value) else "FAIL"


def evaluate_targets(results: Sequence[SizeResult]) -> list[Target]:
    """The issue's targets, with the measured values (at 1M and 100k subjects)."""
    by_size = {result.subjects: result for result in results}
    large, medium = by_size.get(1_000_000), by_size.get(100_000)

    def missing(size: int) -> str:
        return f"({size:,} subjects not run)"

    targets: list[Target] = []
    seconds = large.hpd_run.seconds if large else None
    targets.append(
        Target(
            "1M subjects end to end (hpd run)",
            "<= 120 s",
            f"{seconds:.1f} s" if seconds is not None else missing(1_000_000),
            _verdict(seconds, lambda s: s <= 120),
        )
    )
    peak = large.hpd_run.peak_rss_bytes if large else None
    targets.append(
        Target(
            "1M subjects peak memory (hpd run)",
            "<= 4 GiB",
            f"{peak / GIB:.2f} GiB" if peak is not None else missing(1_000_000),
            _verdict(peak, lambda b: b <= 4 * GIB),
        )
    )
    ratio = dbt_over_sql(large) if large else None
    targets.append(
        Target(
            "dbt build / hand SQL at 1M",
            "<= 3.0x",
            f"{ratio:.2f}x"
            if ratio is not None
            else (missing(1_000_000) if large is None else "(no run record or no hand SQL)"),
            _verdict(ratio, lambda r: r <= 3),
        )
    )
    speedup = pandas_over_core(medium) if medium else None
    targets.append(
        Target(
            "pandas / hpd core (load + dbt build) at 100k",
            ">= 10x",
            f"{speedup:.3g}x"
            if speedup is not None
            else (missing(100_000) if medium is None else "(no run record or pandas not run)"),
            _verdict(speedup, lambda r: r >= 10),
        )
    )
    growth = _ratio(seconds, medium.hpd_run.seconds if medium else None)
    if growth is not None:
        exponent = math.log(growth) / math.log(10)
        measured = f"{growth:.2f}x (exponent {exponent:.2f})"
    else:
        measured = missing(100_000 if medium is None else 1_000_000)
    targets.append(
        Target(
            "hpd run time growth 100k -> 1M",
            "<= 10x (exponent <= 1)",
            measured,
            _verdict(growth, lambda g: g <= 10),
        )
    )
    return targets


# ---------------------------------------------------------------------------
# Agreement


def disagreements(
    warehouse: pd.DataFrame, implementations: dict[str, pd.DataFrame]
) -> dict[str, list[str]]:
    """Per implementation label, where its core kinetics table differs from
    the warehouse's (implementations that agree are left out)."""
    found: dict[str, list[str]] = {}
    for label, frame in implementations.items():
        differences = compare(warehouse, frame)
        if differences:
            found[label] = differences
    return found


def describe_disagreements(subjects: int, found: dict[str, list[str]]) -> str:
    lines = [f"bench: {subjects:,} subjects: the core kinetics tables disagree; no figures"]
    for label, differences in found.items():
        lines.append(f"  warehouse (analytics.tumor_kinetics) vs {label}:")
        lines.extend(f"    {difference}" for difference in differences)
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# The machine


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _os_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return f"{line.split('=', 1)[1].strip().strip(chr(34))} ({platform.release()})"
    return platform.platform()


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, str]:
    """What the figures were measured on (also the CSV's machine columns)."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    total = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else total
    return {
        "cpu": _cpu_model(),
        "cores": str(total) if usable == total else f"{total} ({usable} usable)",
        "ram": f"{ram / GIB:.1f} GiB",
        "os": _os_name(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "dbt": f"dbt-core {_version('dbt-core')}, dbt-duckdb {_version('dbt-duckdb')}",
        "pandas": pd.__version__,
    }


# ---------------------------------------------------------------------------
# Output: table, CSV, plot


def _seconds(measurement: Measurement | None) -> str:
    if measurement is None:
        return "-"
    if measurement.status != OK:
        return measurement.status
    return "-" if measurement.seconds is None else f"{measurement.seconds:.2f}"


def _mib(measurement: Measurement | None) -> str:
    if measurement is None:
        return "-"
    if measurement.status != OK:
        return measurement.status
    peak = measurement.peak_rss_bytes
    return "-" if peak is None else f"{peak / MIB:,.0f}"


def _generation(measurement: Measurement) -> str:
    return measurement.status if measurement.seconds is None else f"{measurement.seconds:.2f}"


def _times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.3g}x"


def format_table(results: Sequence[SizeResult]) -> str:
    """Sizes across, measures down: seconds of wall time, peak RSS in MiB."""
    rows: list[tuple[str, str, list[str]]] = [
        ("TR rows", "", [f"{r.tr_rows:,}" if r.tr_rows else "-" for r in results]),
        ("hpd run (whole refresh)", "s", [_seconds(r.hpd_run) for r in results]),
        ("", "MiB", [_mib(r.hpd_run) for r in results]),
    ]
    for key, label, stages in STAGE_GROUPS:
        rows.append((f"  {label}", "s", [_seconds(stage_group(r, stages)) for r in results]))
        if key == "dbt_build":
            rows.append(("", "MiB", [_mib(stage_group(r, stages)) for r in results]))
    rows.append(
        ("  start-up and the rest", "s", [_seconds_value(unstaged_seconds(r)) for r in results])
    )
    rows.append(
        (
            "  hpd core (load + dbt build)",
            "s",
            [_seconds_value(hpd_core_seconds(r)) for r in results],
        )
    )
    for implementation in IMPLEMENTATIONS:
        cells = [r.baselines.get(implementation.key) for r in results]
        rows.append((implementation.label, "s", [_seconds(m) for m in cells]))
        rows.append(("", "MiB", [_mib(m) for m in cells]))
    rows.extend(
        [
            ("exports generated (not counted)", "s", [_generation(r.synth) for r in results]),
            ("dbt build / hand SQL", "", [_times(dbt_over_sql(r)) for r in results]),
            ("pandas / hpd core", "", [_times(pandas_over_core(r)) for r in results]),
            ("pandas / hpd run", "", [_times(pandas_over_run(r)) for r in results]),
            (
                "pandas (tuned) / hpd core",
                "",
                [
                    _times(_ratio(baseline_seconds(r, "pandas_tuned"), hpd_core_seconds(r)))
                    for r in results
                ],
            ),
        ]
    )
    header = ("subjects", "", [f"{r.subjects:,}" for r in results])
    width = max(len(label) for label, _, _ in (header, *rows))
    cell = max(10, *(len(value) for _, _, values in (header, *rows) for value in values))
    lines = []
    for label, unit, values in (header, *rows):
        lines.append(
            f"{label:<{width}}  {unit:<3}" + "".join(f"  {value:>{cell}}" for value in values)
        )
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _seconds_value(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f}"


def format_targets(targets: Sequence[Target]) -> str:
    name = max(len(t.name) for t in targets)
    goal = max(len(t.goal) for t in targets)
    measured = max(len(t.measured) for t in targets)
    return "\n".join(
        f"{t.name:<{name}}  {t.goal:<{goal}}  {t.measured:<{measured}}  {t.verdict}"
        for t in targets
    )


def format_report(
    results: Sequence[SizeResult], targets: Sequence[Target], machine: dict[str, str]
) -> str:
    repeats = max((r.repeats for r in results), default=1)
    notes = [
        "Notes:",
        "- hpd run: wall time of the `hpd run` process and its peak RSS (the highest of",
        "  its stages' peaks, from the run record, and ru_maxrss);",
        "  the stages come from its run record (runs/<run_id>/run.json); start-up and the",
        "  rest = the wall time outside them (interpreter start, imports, run record).",
        "- hand SQL and pandas: the computation alone, each in its own process (no",
        "  interpreter start, imports or writing of the result); MiB is that process's peak.",
        "- hpd core = load + dbt build: what the warehouse does to get from the files to",
        "  analytics.tumor_kinetics (and more: every mart and dbt's data tests). The pandas",
        "  target compares pandas with hpd core; pandas / hpd run is the stricter view.",
        "- hpd run on Spark: the whole refresh with --target spark (local[2], README",
        "  \"Spark\"), Spark's start included; MiB is the Python process's, without",
        "  Spark's JVM (its heap is capped by HPD_SPARK_DRIVER_MEMORY, 4g by default).",
    ]
    if any(not r.stages for r in results):
        notes.append("- '-' for stages: the refresh wrote no run record (whole-run figures only).")
    for r in results:
        for implementation in IMPLEMENTATIONS:
            m = r.baselines.get(implementation.key)
            if m is not None and m.status != OK:
                notes.append(f"- {implementation.label} at {r.subjects:,}: {m.status}: {m.note}")
    return "\n".join(
        [
            f"hpd benchmark: seconds of wall time, peak RSS in MiB"
            f"{f', fastest of {repeats} runs' if repeats > 1 else ''}",
            "",
            format_table(results),
            "",
            *notes,
            "",
            "Targets (the issue's, on a 2-core machine):",
            format_targets(targets),
            "",
            "Machine:",
            *(f"  {name}: {value}" for name, value in machine.items()),
        ]
    )


CSV_FIELDS = (
    "subjects",
    "tr_rows",
    "measure",
    "status",
    "seconds",
    "peak_rss_bytes",
    "repeats",
    "note",
    "started_at",
)


def csv_rows(
    results: Sequence[SizeResult], machine: dict[str, str], started_at: str
) -> list[dict[str, str | int | float | None]]:
    """One row per size and measure: the generation (not counted), the whole
    run, each stage of its run record (`hpd run/<stage>`), each implementation."""
    rows: list[dict[str, str | int | float | None]] = []
    for r in results:
        measures: list[tuple[str, Measurement]] = [
            ("synth (not counted)", r.synth),
            ("hpd run", r.hpd_run),
            *((f"hpd run/{name}", m) for name, m in r.stages.items()),
            *(
                (implementation.label, r.baselines[implementation.key])
                for implementation in IMPLEMENTATIONS
                if implementation.key in r.baselines
            ),
        ]
        for name, m in measures:
            rows.append(
                {
                    "subjects": r.subjects,
                    "tr_rows": r.tr_rows,
                    "measure": name,
                    "status": m.status,
                    "seconds": None if m.seconds is None else round(m.seconds, 4),
                    "peak_rss_bytes": m.peak_rss_bytes,
                    "repeats": r.repeats,
                    "note": m.note,
                    "started_at": started_at,
                    **{f"machine_{key}": value for key, value in machine.items()},
                }
            )
    return rows


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = list(rows[0]) if rows else list(CSV_FIELDS)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def plot_series(results: Sequence[SizeResult]) -> dict[str, list[tuple[int, float]]]:
    """(subjects, seconds) per line of the plot, measured points only."""

    def points(get: Callable[[SizeResult], float | None]) -> list[tuple[int, float]]:
        return [(r.subjects, s) for r in results if (s := get(r)) is not None and s > 0]

    series = {
        "hpd run": points(lambda r: r.hpd_run.seconds),
        "dbt build": points(
            lambda r: r.stages["dbt_build"].seconds if "dbt_build" in r.stages else None
        ),
    }
    for implementation in IMPLEMENTATIONS:
        series[implementation.label] = points(
            lambda r, key=implementation.key: baseline_seconds(r, key)
        )
    return {label: values for label, values in series.items() if values}


def _short(subjects: int) -> str:
    for factor, suffix in ((1_000_000, "M"), (1_000, "k")):
        if subjects >= factor and subjects % factor == 0:
            return f"{subjects // factor}{suffix}"
    return f"{subjects:,}"


def write_plot(path: Path, results: Sequence[SizeResult], machine: dict[str, str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = plot_series(results)
    figure, axes = plt.subplots(figsize=(7, 5))
    for label, values in series.items():
        xs, ys = zip(*values, strict=True)
        axes.plot(xs, ys, marker="o", label=label)
    reference = series.get("hpd run") or next(iter(series.values()), None)
    if reference:
        # Slope 1 on log-log axes (time proportional to subjects), through the
        # largest run: a line steeper than it grows worse than linearly.
        x0, y0 = reference[-1]
        xs = [r.subjects for r in results]
        axes.plot(
            [min(xs), max(xs)],
            [y0 * min(xs) / x0, y0 * max(xs) / x0],
            linestyle="--",
            color="grey",
            label="linear (slope 1)",
        )
    axes.set_xscale("log")
    axes.set_yscale("log")
    sizes = [r.subjects for r in results]
    axes.set_xticks(sizes, [_short(size) for size in sizes])
    axes.minorticks_off()
    axes.set_xlabel("subjects")
    axes.set_ylabel("wall time (s)")
    axes.set_title(f"hpd benchmark: {machine['cpu']}, {machine['cores']} cores", fontsize=10)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


# ---------------------------------------------------------------------------
# Running children


@dataclass(frozen=True)
class ChildRun:
    exit_code: int  # negative: killed by that signal
    seconds: float
    peak_rss_bytes: int
    log: Path


def _first_to_be_killed() -> None:
    # In the child: if memory runs out, the kernel kills this process rather
    # than the benchmark (raising one's own OOM score needs no privilege).
    with contextlib.suppress(OSError):
        Path("/proc/self/oom_score_adj").write_text("1000")


def run_child(argv: Sequence[str], log: Path, expendable: bool = False) -> ChildRun:
    """Run `argv` with its output in `log`; its wall time and its own peak RSS
    (os.wait4 gives the rusage of this child and its descendants, not ours).
    An `expendable` child is the first the kernel kills when memory runs out."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=_first_to_be_killed if expendable else None,
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    exit_code = os.waitstatus_to_exitcode(status)
    process.returncode = exit_code  # reaped here, not by Popen
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return ChildRun(exit_code, seconds, usage.ru_maxrss * scale, log)


def _log_tail(log: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        text = log.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(f"  | {line}" for line in text[-lines:])
    return ""


class BenchError(Exception):
    """A run crashed: the benchmark stops with exit status 1."""


# ---------------------------------------------------------------------------
# Exports


def _has_exports(folder: Path) -> bool:
    return folder.is_dir() and all(find_export(folder, d) is not None for d in REQUIRED_DOMAINS)


def ensure_exports(data: Path, subjects: int, logs: Path) -> tuple[Path, Measurement]:
    """The exports of `subjects`: `<data>/synth-N` generated once by `hpd
    synth` (a marker `synth-N.json` beside it says the generation finished,
    and records its seconds), or an existing `<data>/sN`."""
    ours, marker = data / f"synth-{subjects}", data / f"synth-{subjects}.json"
    if marker.is_file() and _has_exports(ours):
        recorded = json.loads(marker.read_text(encoding="utf-8"))
        return ours, Measurement(recorded.get("seconds"), None, CACHED, f"generated {ours}")
    existing = data / f"s{subjects}"
    if _has_exports(existing):
        return existing, Measurement(None, None, CACHED, f"existing {existing}")
    shutil.rmtree(ours, ignore_errors=True)  # an interrupted generation
    _progress(f"{subjects:,} subjects: generating the exports into {ours}")
    child = run_child(
        [sys.executable, "-m", "hpd", "synth", "--subjects", str(subjects), "--out", str(ours)],
        logs / f"synth-{subjects}.log",
    )
    if child.exit_code != 0:
        raise BenchError(
            f"hpd synth --subjects {subjects} failed (exit {child.exit_code}); "
            f"log {child.log}\n{_log_tail(child.log)}"
        )
    marker.write_text(
        json.dumps({"subjects": subjects, "seconds": child.seconds, "seed": 1}), encoding="utf-8"
    )
    return ours, Measurement(child.seconds, child.peak_rss_bytes, GENERATED, str(ours))


# ---------------------------------------------------------------------------
# hpd run


def run_record(warehouse: Path) -> dict[str, Any] | None:
    """The record `hpd run` wrote beside the warehouse (the newest), if any."""
    records = sorted(
        (warehouse.parent / "runs").glob("*/run.json"), key=lambda path: path.stat().st_mtime
    )
    if not records:
        return None
    try:
        record = json.loads(records[-1].read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def stages_of(record: dict[str, Any] | None) -> dict[str, Measurement]:
    stages: dict[str, Measurement] = {}
    for stage in (record or {}).get("stages") or []:
        if isinstance(stage, dict) and "name" in stage:
            seconds, peak = stage.get("seconds"), stage.get("peak_rss_bytes")
            stages[str(stage["name"])] = Measurement(
                float(seconds) if seconds is not None else None,
                int(peak) if peak is not None else None,
            )
    return stages


def read_kinetics(warehouse: Path) -> pd.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(f"select {', '.join(COLUMNS)} from analytics.tumor_kinetics").df()


def read_tr_rows(warehouse: Path, record: dict[str, Any] | None) -> int | None:
    rows = (record or {}).get("rows") or {}
    if isinstance(rows, dict) and rows.get("tr") is not None:
        return int(rows["tr"])
    with duckdb.connect(str(warehouse), read_only=True) as con:
        row = con.execute(
            "select rows_read from analytics.input_reconciliation where lower(domain) = 'tr'"
        ).fetchone()
    return int(row[0]) if row else None


@dataclass
class HpdRun:
    measurement: Measurement
    stages: dict[str, Measurement]
    tr_rows: int | None
    kinetics: pd.DataFrame | None


def run_hpd(
    exports: Path, work: Path, logs: Path, subjects: int, attempt: int, keep: bool
) -> HpdRun:
    """One `hpd run` into a fresh folder; the kinetics table is read when
    `keep` (the first attempt: every attempt computes the same table)."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    warehouse = work / "warehouse.duckdb"
    child = run_child(
        [
            sys.executable,
            "-m",
            "hpd",
            "run",
            "--exports",
            str(exports),
            "--warehouse",
            str(warehouse),
            "--reports",
            str(work / "reports"),
        ],
        logs / f"hpd-run-{subjects}-{attempt}.log",
    )
    if child.exit_code != 0:
        raise BenchError(
            f"hpd run at {subjects:,} subjects failed (exit {child.exit_code}); "
            f"log {child.log}\n{_log_tail(child.log)}"
        )
    record = run_record(warehouse)
    if record is not None:
        (logs / f"hpd-run-{subjects}-{attempt}.json").write_text(
            json.dumps(record, indent=2), encoding="utf-8"
        )
    # `hpd run` resets the kernel's high-water mark at each stage to measure
    # the stage's own peak (/proc/self/clear_refs), and that resets the
    # ru_maxrss its parent sees too: the run's peak is the highest stage's.
    peak = max(child.peak_rss_bytes, int(record.get("peak_rss_bytes") or 0) if record else 0)
    result = HpdRun(
        measurement=Measurement(child.seconds, peak),
        stages=stages_of(record),
        tr_rows=read_tr_rows(warehouse, record),
        kinetics=read_kinetics(warehouse) if keep else None,
    )
    shutil.rmtree(work, ignore_errors=True)  # a 1M warehouse and its copies are GBs
    return result


# ---------------------------------------------------------------------------
# Implementations in their own process


def run_implementation(
    implementation: Implementation,
    exports: Path,
    out: Path,
    logs: Path,
    subjects: int,
    attempt: int,
) -> tuple[Measurement, Path | None]:
    """`python -m hpd.bench --baseline KEY`; the computation's seconds (from
    the child) and the child's peak RSS. Out of memory is recorded, any other
    failure raises BenchError."""
    output = out / f"{implementation.key}-{subjects}.parquet"
    timing = output.with_suffix(".json")
    for path in (output, timing):
        path.unlink(missing_ok=True)
    child = run_child(
        [
            sys.executable,
            "-m",
            "hpd.bench",
            "--baseline",
            implementation.key,
            "--exports",
            str(exports),
            "--output",
            str(output),
        ],
        logs / f"{implementation.key}-{subjects}-{attempt}.log",
        expendable=True,
    )
    if child.exit_code in (EXIT_OUT_OF_MEMORY, -signal.SIGKILL):
        how = "MemoryError" if child.exit_code == EXIT_OUT_OF_MEMORY else "killed (SIGKILL)"
        note = f"{how} after {child.seconds:.0f} s at {child.peak_rss_bytes / GIB:.1f} GiB"
        return Measurement(None, child.peak_rss_bytes, OUT_OF_MEMORY, note), None
    if child.exit_code != 0 or not timing.is_file():
        raise BenchError(
            f"{implementation.label} at {subjects:,} subjects failed (exit {child.exit_code}); "
            f"log {child.log}\n{_log_tail(child.log)}"
        )
    seconds = float(json.loads(timing.read_text(encoding="utf-8"))["seconds"])
    return Measurement(seconds, child.peak_rss_bytes), output


def baseline_main(key: str, exports: Path, output: Path) -> int:
    """The child's side: compute, then write the table and the seconds."""
    try:
        seconds, frame = BY_KEY[key].compute(exports)
    except MemoryError:
        print(f"hpd.bench: {key}: out of memory", file=sys.stderr)
        return EXIT_OUT_OF_MEMORY
    output.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(output, index=False)
    output.with_suffix(".json").write_text(
        json.dumps({"seconds": seconds, "rows": len(frame)}), encoding="utf-8"
    )
    return 0


# ---------------------------------------------------------------------------
# One size


def _fastest(a: Measurement | None, b: Measurement) -> Measurement:
    if a is None or a.seconds is None:
        return b
    if b.seconds is None:
        return a
    return b if b.seconds < a.seconds else a


def bench_size(
    subjects: int, data: Path, out: Path, repeats: int, skip_above: dict[str, int | None]
) -> tuple[SizeResult, dict[str, list[str]]]:
    """Run everything at one size; the result and the disagreements found."""
    logs, scratch = out / "logs", out / "scratch"
    exports, synth = ensure_exports(data, subjects, logs)
    best: HpdRun | None = None
    kinetics: pd.DataFrame | None = None
    for attempt in range(1, repeats + 1):
        _progress(f"{subjects:,} subjects: hpd run ({attempt}/{repeats})")
        run = run_hpd(exports, scratch / "hpd", logs, subjects, attempt, keep=kinetics is None)
        kinetics = kinetics if run.kinetics is None else run.kinetics
        if best is None or (run.measurement.seconds or 0) < (best.measurement.seconds or 0):
            best = run
    assert best is not None and kinetics is not None
    result = SizeResult(
        subjects, best.tr_rows, synth, best.measurement, best.stages, repeats=repeats
    )

    tables: dict[str, pd.DataFrame] = {}
    for implementation in IMPLEMENTATIONS:
        limit = skip_above.get(implementation.key)
        if limit is not None and subjects > limit:
            result.baselines[implementation.key] = Measurement(
                None, None, SKIPPED, f"above {limit:,} subjects (--skip-{implementation.key}-above)"
            )
            continue
        chosen: Measurement | None = None
        for attempt in range(1, repeats + 1):
            _progress(f"{subjects:,} subjects: {implementation.label} ({attempt}/{repeats})")
            measurement, output = run_implementation(
                implementation, exports, scratch, logs, subjects, attempt
            )
            chosen = _fastest(chosen, measurement)
            if output is not None and implementation.label not in tables:
                tables[implementation.label] = pd.read_parquet(output)
            if output is not None:
                output.unlink(missing_ok=True)
                output.with_suffix(".json").unlink(missing_ok=True)
            if measurement.status == OUT_OF_MEMORY:
                break  # the next attempt would fail the same way
        assert chosen is not None
        result.baselines[implementation.key] = chosen

    _progress(f"{subjects:,} subjects: comparing the core kinetics tables")
    found = disagreements(kinetics, tables)
    if not found:
        labels = ["the warehouse", *tables]
        names = ", ".join(labels[:-1]) + " and " + labels[-1]
        unchecked = [
            f"{i.label} {result.baselines[i.key].status}"
            for i in IMPLEMENTATIONS
            if i.label not in tables
        ]
        print(
            f"bench: {subjects:,} subjects: {names} agree on the core kinetics of "
            f"{len(kinetics):,} treated subjects"
            + (f" ({'; '.join(unchecked)})" if unchecked else ""),
            flush=True,
        )
    return result, found


def _progress(line: str) -> None:
    print(f"bench: {line}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Command line


def parse_sizes(text: str) -> list[int]:
    """`1000,10k,1M` -> [1000, 10000, 1000000]."""
    sizes = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        factor = {"k": 1_000, "m": 1_000_000}.get(item[-1].lower(), 1)
        number = item[:-1] if factor > 1 else item
        try:
            value = int(float(number) * factor)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"not a size: {item!r}") from error
        if value < 1:
            raise argparse.ArgumentTypeError(f"sizes must be positive: {item!r}")
        sizes.append(value)
    if not sizes:
        raise argparse.ArgumentTypeError("no sizes")
    return sorted(set(sizes))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hpd.bench",
        description="benchmark hpd run against a hand-written DuckDB script and pandas",
    )
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=list(DEFAULT_SIZES),
        help="subjects per cohort, comma-separated, k and M allowed (default 1k,10k,100k,1M)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help=f"exports: synth-N folders made here once, or existing sN (default {DEFAULT_DATA})",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"results folder (default {DEFAULT_OUT})"
    )
    parser.add_argument(
        "--skip-pandas-above",
        type=parse_limit,
        default=100_000,
        metavar="N",
        help="do not run the straightforward pandas above N subjects (default 100k: at 1M "
        "it runs for a quarter of an hour; the target compares at 100k). The tuned pandas "
        "runs at every size",
    )
    parser.add_argument(
        "--skip-spark-above",
        type=parse_limit,
        default=None,
        metavar="N",
        help="do not run the refresh on Spark above N subjects (0: never; default: at every size)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, metavar="K", help="runs per measure, fastest kept"
    )
    # The child's side of one implementation (used by the benchmark itself).
    parser.add_argument("--baseline", choices=sorted(BY_KEY), help=argparse.SUPPRESS)
    parser.add_argument("--exports", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    return parser


def parse_sizes_one(text: str) -> int:
    sizes = parse_sizes(text)
    if len(sizes) != 1:
        raise argparse.ArgumentTypeError(f"one size expected: {text!r}")
    return sizes[0]


def parse_limit(text: str) -> int:
    """A size, or 0 (never)."""
    return 0 if text.strip() == "0" else parse_sizes_one(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.baseline:
        if args.exports is None or args.output is None:
            parser.error("--baseline needs --exports and --output")
        return baseline_main(args.baseline, args.exports.resolve(), args.output.resolve())
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    data, out = args.data.resolve(), args.out.resolve()
    started = datetime.now(UTC)
    results: list[SizeResult] = []
    try:
        for subjects in args.sizes:
            result, found = bench_size(
                subjects,
                data,
                out,
                args.repeat,
                {"pandas": args.skip_pandas_above, "spark": args.skip_spark_above},
            )
            if found:
                print(describe_disagreements(subjects, found), flush=True)
                return 1
            results.append(result)
    except BenchError as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(out / "scratch", ignore_errors=True)

    machine = machine_info()
    print()
    print(format_report(results, evaluate_targets(results), machine))
    csv_path, png_path = out / "bench.csv", out / "bench.png"
    write_csv(csv_path, csv_rows(results, machine, started.isoformat(timespec="seconds")))
    write_plot(png_path, results, machine)
    print()
    print(f"results: {csv_path}")
    print(f"plot:    {png_path}")
    print(f"logs:    {out / 'logs'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

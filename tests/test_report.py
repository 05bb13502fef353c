"""The report (SPEC §5): statistics into the warehouse, figures and one
self-contained HTML page, checked in a real headless Chromium."""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from browser import CHROMIUM_FLAGS, ensure_chromium
from browser import chromium_run as _chromium
from conftest import query, query_dicts
from hpd import figures
from hpd.report import (
    HPD_LISTING_LIMIT,
    ReportContent,
    ReportResult,
    build_report,
    render_html,
)
from hpd.statistics import FREEMAN_HALTON_MONTE_CARLO

# The paper's Table 1 p-values, by the report's row labels.
PAPER_P_VALUES = {
    "Gender": "1.000",
    "Age, median (range)": "0.587",
    "ECOG performance status": "0.341",
    "Location": "1.000",
    "Histology": "0.032",
    "Metastatic sites": "0.749",
    "Type of immunotherapy": "0.447",
    "MMR": "0.525",
    "PD-L1": "1.000",
}
# The same, by `analytics.table1.variable`.
TABLE1_P_VALUES = {
    "Gender": 1.000,
    "Age": 0.587,
    "ECOG": 0.341,
    "Location": 1.000,
    "Histology": 0.032,
    "Metastatic sites": 0.749,
    "Type of immunotherapy": 0.447,
    "MMR": 0.525,
    "PD-L1": 1.000,
}
FIGURES = [
    "figure1_flowchart.png",
    "figure2_tgk.png",
    "figure4_burden.png",
    "waterfall.png",
    "kaplan_meier.png",
]


@dataclass(frozen=True)
class BuiltReport:
    result: ReportResult
    warehouse: Path


@pytest.fixture(scope="session")
def built(demo_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> BuiltReport:
    """The report of a writable copy of the demo warehouse (the shared one stays as built)."""
    folder = tmp_path_factory.mktemp("report")
    warehouse = folder / "warehouse.duckdb"
    shutil.copy(demo_warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        result = build_report(con, folder / "reports")
    return BuiltReport(result=result, warehouse=warehouse)


# --------------------------------------------------------------------------- HTML parsing


class _Page(HTMLParser):
    """Tags with their attributes, and the text of every table row."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.rows: list[list[str]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))
        if tag == "tr":
            self._row = []
        elif tag in {"td", "th"} and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in {"td", "th"} and self._row is not None and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    return page


# --------------------------------------------------------------------------- the warehouse


def test_statistics_are_written_into_the_warehouse(built: BuiltReport) -> None:
    rows = query_dicts(
        built.warehouse,
        "select variable, min(p_value) as p, max(p_value) as p_max, count(*) as rows "
        "from analytics.table1 group by variable",
    )
    p_values = {row["variable"]: row["p"] for row in rows}
    assert set(p_values) == set(TABLE1_P_VALUES)
    for variable, expected in TABLE1_P_VALUES.items():
        assert round(p_values[variable], 3) == pytest.approx(expected, abs=1e-9), variable
    assert all(row["p"] == row["p_max"] for row in rows)  # one p-value per variable
    age = query(
        built.warehouse,
        "select all_summary, no_hpd_summary, hpd_summary from analytics.table1 "
        "where variable = 'Age'",
    )
    dash = "\u2013"
    assert age == [(f"54 (22{dash}77)", f"52 (22{dash}77)", f"63 (31{dash}65)")]

    survival = query_dicts(
        built.warehouse, "select * from analytics.survival_summary order by hpd_group"
    )
    by_group = {row["hpd_group"]: row for row in survival}
    assert set(by_group) == {"HPD", "Not HPD", "Not judged"}
    assert (by_group["HPD"]["subjects"], by_group["HPD"]["events"]) == (5, 5)
    assert by_group["Not HPD"]["subjects"] == 20
    assert sum(row["subjects"] + row["unknown_time"] for row in survival) == 45
    assert by_group["HPD"]["median_os_months"] == pytest.approx(3.8, abs=0.02)
    assert 0 <= by_group["HPD"]["logrank_p"] <= 1
    assert {row["definition_id"] for row in survival} == {"tgkr"}


def test_csv_files_match_the_warehouse(built: BuiltReport) -> None:
    table = pd.read_csv(built.result.table1_csv)
    assert len(table) == query(built.warehouse, "select count(*) from analytics.table1")[0][0]
    summary = pd.read_csv(built.result.survival_summary_csv)
    assert list(summary["hpd_group"]) == ["HPD", "Not HPD", "Not judged"]


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize("name", FIGURES)
def test_figures_are_real_images(built: BuiltReport, name: str) -> None:
    path = built.result.reports_dir / name
    assert path.exists() and path.stat().st_size > 20_000, path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width >= 800 and image.height >= 400
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    colours = np.unique(pixels, axis=0)
    assert len(colours) > 100, f"{name}: only {len(colours)} colours"
    # Not mostly blank: a good share of the pixels are not white.
    assert (pixels.min(axis=1) < 240).mean() > 0.02


def test_table_1_in_the_html_has_the_papers_p_values(built: BuiltReport) -> None:
    page = _parse(built.result.html.read_text(encoding="utf-8"))
    header = next(row for row in page.rows if row and row[-1] == "P value")
    assert header[1:4] == ["All patients (n = 25)", "TGKR<2 (n = 20)", "TGKR≥2 (n = 5)"]
    found = {}
    for row in page.rows:
        if row and row[0] in PAPER_P_VALUES and len(row) == 5:
            found[row[0]] = row[4]
    assert set(found) == set(PAPER_P_VALUES)
    for label, expected in PAPER_P_VALUES.items():
        # The p-value is followed by the footnote mark of its test.
        assert re.fullmatch(rf"{re.escape(expected)}[a-z]", found[label]), (label, found[label])
    text = " ".join(page.text)
    assert "Fisher's exact test" in text and "Mann-Whitney U" in text
    assert "Not judged" in text  # the survival groups are stated


def test_html_is_self_contained(built: BuiltReport) -> None:
    text = built.result.html.read_text(encoding="utf-8")
    page = _parse(text)
    images = [attrs for tag, attrs in page.tags if tag == "img"]
    assert len(images) == 5
    for attrs in images:
        src = attrs.get("src", "")
        assert src.startswith("data:image/png;base64,"), src[:60]
        try:
            png = base64.b64decode(src.split(",", 1)[1], validate=True)
        except binascii.Error as error:
            pytest.fail(f"an image is not valid base64: {error}")
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert attrs.get("alt")
    assert not re.search(r"https?://", text, flags=re.IGNORECASE)
    assert not [tag for tag, _ in page.tags if tag in {"script", "link", "iframe", "object"}]
    for tag, attrs in page.tags:
        for name in ("src", "href"):
            if name in attrs:
                assert attrs[name].startswith(("data:", "#")), (tag, attrs[name][:60])
    assert "url(" not in text


def _content(**changes: object) -> ReportContent:
    attrition = pd.DataFrame(
        {
            "step": [1, 2],
            "status": ["no_first_evaluation", "evaluable"],
            "n": [1, 2],
            "n_remaining": [3, 2],
        }
    )
    table = pd.DataFrame(
        [
            {
                "variable": "Gender",
                "variable_order": 1,
                "category": "<b>Male</b>",
                "category_order": 1,
                "all_n": 2,
                "no_hpd_n": 1,
                "hpd_n": 1,
                "all_summary": "2 (100%)",
                "no_hpd_summary": "1 (100%)",
                "hpd_summary": "1 (100%)",
                "p_value": 0.5,
                "test": "<i>odd</i> test",
            },
        ]
    )
    fields: dict[str, object] = {
        "warehouse": "/data/<warehouse>.duckdb",
        "generated_at": datetime(2024, 1, 2, 3, 4, tzinfo=UTC),
        "definition": "tgkr",
        "definition_name": "TGK ratio & <friends>",
        "group_labels": ("TGKR<2", "TGKR≥2"),
        "attrition": attrition,
        "table1": table,
        "table1_subjects": (2, 1, 1),
        "table1_not_judged": 0,
        "definitions": pd.DataFrame(
            {
                "definition_id": ["tgkr"],
                "name": ["<script>alert(1)</script>"],
                "rule": ["a < b"],
                "subjects": [3],
                "judged": [2],
                "hpd": [1],
                "hpd_percent": [50.0],
            }
        ),
        "agreement": pd.DataFrame(
            columns=[
                "definition_a",
                "definition_b",
                "judged_by_both",
                "hpd_by_a",
                "hpd_by_b",
                "hpd_by_both",
                "jaccard_index",
                "cohens_kappa",
            ]
        ),
        "survival_summary": pd.DataFrame(
            {
                "hpd_group": ["HPD"],
                "subjects": [1],
                "events": [1],
                "median_os_months": [None],
                "median_ci_lower": [None],
                "median_ci_upper": [None],
                "logrank_p": [None],
                "unknown_time": [0],
            }
        ),
        "hpd_subjects": pd.DataFrame(
            {
                "usubjid": ["S-<1>"],
                "tgk_pre": [1.0],
                "tgk_post": [3.0],
                "tgkr": [3.0],
                "pct_change_first_evaluation": [50.0],
                "response_first_evaluation_irrecist": ["PD"],
            }
        ),
        "images": {"flowchart": b"\x89PNG\r\n\x1a\nfake"},
    }
    fields.update(changes)
    return ReportContent(**fields)  # type: ignore[arg-type]


def test_render_html_is_pure_and_escapes_every_value() -> None:
    content = _content()
    first = render_html(content)
    assert first == render_html(content)
    assert "<script>" not in first and "&lt;script&gt;alert(1)&lt;/script&gt;" in first
    assert "&lt;b&gt;Male&lt;/b&gt;" in first and "<b>Male</b>" not in first
    assert "&lt;i&gt;odd&lt;/i&gt; test" in first
    assert "/data/&lt;warehouse&gt;.duckdb" in first
    assert "TGK ratio &amp; &lt;friends&gt;" in first
    assert "S-&lt;1&gt;" in first
    assert "TGKR&lt;2 (n = 1)" in first
    assert "2024-01-02" in first
    assert "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode() in first
    # Figures not drawn are said to be missing, not linked.
    assert "not drawn" in first


def test_the_listing_of_hyperprogressors_is_capped() -> None:
    subjects = pd.DataFrame(
        {
            "usubjid": [f"S-{i:05d}" for i in range(5000)],
            "tgk_pre": 1.0,
            "tgk_post": 3.0,
            "tgkr": 3.0,
            "pct_change_first_evaluation": 50.0,
            "response_first_evaluation_irrecist": "PD",
        }
    )
    page = render_html(_content(hpd_subjects=subjects))
    listed = [row for row in _parse(page).rows if row and row[0].startswith("S-")]
    assert [row[0] for row in listed] == list(subjects["usubjid"].head(HPD_LISTING_LIMIT))
    assert f"The first {HPD_LISTING_LIMIT} of 5000 hyperprogressive subjects" in page
    # A short list is shown whole, without the note.
    page = render_html(_content(hpd_subjects=subjects.head(3)))
    assert "The first" not in page
    assert len([row for row in _parse(page).rows if row and row[0].startswith("S-")]) == 3


def test_captions_follow_the_content() -> None:
    images = {"tgk": b"\x89PNG\r\n\x1a\nfake"}
    default = render_html(_content(images=images))
    assert "Hyperprogressive subjects are labelled." in default
    changed = render_html(
        _content(images=images, captions={"tgk": "Shown as a density &amp; more."})
    )
    assert "Shown as a density &amp; more." in changed
    assert "Hyperprogressive subjects are labelled." not in changed


# --------------------------------------------------------------------------- a large warehouse

LARGE_SUBJECTS = 30_000


def _large_warehouse(path: Path, n: int = LARGE_SUBJECTS) -> None:
    """The marts the report reads, made up for `n` treated subjects: half of
    them evaluable, a tenth of those hyperprogressive, a histology of three
    subjects (an expected count below 5 among thousands)."""
    rng = np.random.default_rng(11)
    ids = [f"S-{i:06d}" for i in range(n)]
    evaluable = rng.random(n) < 0.5
    hpd = evaluable & (rng.random(n) < 0.1)
    tgk_pre = np.abs(rng.normal(5, 8, n)) + 0.1
    tgk_post = np.where(hpd, tgk_pre * rng.uniform(2, 6, n), tgk_pre * rng.uniform(-1, 1.9, n))
    change = np.where(hpd, rng.uniform(50, 900, n), rng.normal(5, 30, n))
    first_dose = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, n), "D")
    kinetics = pd.DataFrame(
        {
            "usubjid": ids,
            "evaluability": np.where(evaluable, "evaluable", "no_pre_baseline_scan"),
            "tgk_pre": tgk_pre,
            "tgk_post": tgk_post,
            "tgkr": tgk_post / tgk_pre,
            "pct_change_first_evaluation": change,
            "response_first_evaluation_irrecist": np.select(
                [change >= 20, change <= -30], ["PD", "PR"], "SD"
            ),
            "first_dose_date": first_dose.date,
            "pre_baseline_date": (first_dose - pd.to_timedelta(60, "D")).date,
            "baseline_date": (first_dose - pd.to_timedelta(7, "D")).date,
            "first_evaluation_date": (first_dose + pd.to_timedelta(56, "D")).date,
            "s_pre_mm": rng.uniform(20, 80, n),
            "s_baseline_mm": rng.uniform(40, 120, n),
            "s_first_evaluation_mm": rng.uniform(60, 300, n),
        }
    )
    histology = rng.choice(["ADENOCARCINOMA", "SQUAMOUS CELL CARCINOMA"], n).astype(object)
    histology[np.flatnonzero(evaluable)[:3]] = "SARCOMA"
    characteristics = pd.DataFrame(
        {
            "usubjid": ids,
            "sex": rng.choice(["M", "F"], n),
            "age": rng.normal(60, 10, n).round(),
            "ecog_baseline": rng.choice([0.0, 1.0], n),
            "primsite": rng.choice(["STOMACH", "LIVER", "COLORECTAL"], n),
            "histol": histology,
            "metsites": rng.poisson(2, n).astype(float),
            "regimen": rng.choice(["PD-1", "PD-L1"], n),
            "mmr": rng.choice(["pMMR", "dMMR"], n),
            "pdl1cps": rng.exponential(2, n),
        }
    )
    classification = pd.DataFrame(
        {
            "usubjid": ids,
            "definition_id": "tgkr",
            "is_hpd": pd.array(np.where(evaluable, hpd, pd.NA), dtype="boolean"),
        }
    )
    survival = pd.DataFrame(
        {
            "usubjid": ids,
            "os_months": np.round(rng.exponential(np.where(hpd, 4.0, 12.0)) * 30) / 30,
            "event": rng.random(n) < 0.6,
        }
    )
    judged = int(evaluable.sum())
    small = {
        "cohort_attrition": pd.DataFrame(
            {
                "step": [1, 2],
                "status": ["no_pre_baseline_scan", "evaluable"],
                "n": [n - judged, judged],
                "n_remaining": [n, judged],
            }
        ),
        "hpd_definitions": pd.DataFrame(
            {
                "definition_id": ["tgkr"],
                "definition_order": [1],
                "name": ["TGK ratio"],
                "rule": ["TGKR >= 2"],
                "thresholds_in_force": ["tgkr_min_ratio=2"],
            }
        ),
        "hpd_definition_summary": pd.DataFrame(
            {
                "definition_id": ["tgkr"],
                "definition_order": [1],
                "subjects": [n],
                "judged": [judged],
                "hpd": [int(hpd.sum())],
                "hpd_percent": [100 * hpd.sum() / judged],
            }
        ),
        "hpd_definition_agreement": pd.DataFrame(
            columns=[
                "definition_a",
                "definition_b",
                "judged_by_both",
                "hpd_by_a",
                "hpd_by_b",
                "hpd_by_both",
                "jaccard_index",
                "cohens_kappa",
                "order_a",
                "order_b",
            ]
        ).astype({"order_a": "int64", "order_b": "int64"}),
    }
    tables = {
        "tumor_kinetics": kinetics,
        "subject_characteristics": characteristics,
        "hpd_classification": classification,
        "survival": survival,
        **small,
    }
    with duckdb.connect(str(path)) as con:
        con.execute("create schema analytics")
        for name, frame in tables.items():
            con.register("frame", frame)
            con.execute(f"create table analytics.{name} as select * from frame")
            con.unregister("frame")


@dataclass(frozen=True)
class LargeReport:
    result: ReportResult
    warehouse: Path
    warnings: list[str]
    hpd: int


@pytest.fixture(scope="module")
def large_report(tmp_path_factory: pytest.TempPathFactory) -> LargeReport:
    folder = tmp_path_factory.mktemp("large_report")
    warehouse = folder / "warehouse.duckdb"
    _large_warehouse(warehouse)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with duckdb.connect(str(warehouse)) as con:
            result = build_report(con, folder / "reports")
    hpd = query(warehouse, "select count(*) from analytics.hpd_classification where is_hpd")[0][0]
    return LargeReport(
        result=result,
        warehouse=warehouse,
        warnings=[f"{w.category.__name__}: {w.message}" for w in caught],
        hpd=int(hpd),
    )


def test_a_large_report_emits_no_warning(large_report: LargeReport) -> None:
    assert large_report.warnings == []


def test_a_large_report_stays_small(large_report: LargeReport) -> None:
    html_path = large_report.result.html
    assert html_path.stat().st_size < 3_000_000
    page = _parse(html_path.read_text(encoding="utf-8"))
    listed = [row for row in page.rows if row and row[0].startswith("S-")]
    assert len(listed) == HPD_LISTING_LIMIT < large_report.hpd
    text = " ".join(page.text)
    assert f"The first {HPD_LISTING_LIMIT} of {large_report.hpd} hyperprogressive" in text
    images = [attrs for tag, attrs in page.tags if tag == "img"]
    assert len(images) == 5
    assert all(attrs["src"].startswith("data:image/png;base64,") for attrs in images)


def test_a_large_report_says_how_its_figures_are_drawn(large_report: LargeReport) -> None:
    text = " ".join(_parse(large_report.result.html.read_text(encoding="utf-8")).text)
    assert "are shown as a density" in text
    assert f"The {large_report.hpd} hyperprogressive subjects are not labelled" in text
    assert f"{figures.BURDEN_SAMPLE} of the {large_report.hpd} subjects drawn at random" in text
    assert "columns of consecutive subjects" in text
    assert f"censored at {figures.KM_CENSOR_TICK_LIMIT} distinct times or fewer" in text
    assert "Hyperprogressive subjects are labelled." not in text


def test_a_large_report_tests_a_rare_category_by_monte_carlo(large_report: LargeReport) -> None:
    tests = dict(
        query(large_report.warehouse, "select distinct variable, test from analytics.table1")
    )
    assert tests["Histology"] == FREEMAN_HALTON_MONTE_CARLO
    assert tests["Gender"] == "Pearson chi-square test"
    assert FREEMAN_HALTON_MONTE_CARLO in large_report.result.html.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- Chromium


def _near(pixels: np.ndarray, colour: tuple[int, int, int], tolerance: int = 6) -> int:
    return int((np.abs(pixels.astype(int) - np.array(colour)).max(axis=1) <= tolerance).sum())


def _high_fd(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class DevTools:
    """Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`):
    commands go to its fd 3, answers and events come from its fd 4, as JSON
    messages ended by a NUL byte. Only the standard library is needed."""

    def __init__(self, chromium: Path, profile: Path) -> None:
        # Above fd 9, so that moving them to fds 3 and 4 cannot clobber one of them.
        commands_read, self._commands = (_high_fd(fd) for fd in os.pipe())
        self._replies, replies_write = (_high_fd(fd) for fd in os.pipe())
        trampoline = (
            "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
            "os.execv(sys.argv[3], sys.argv[3:])"
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                trampoline,
                str(commands_read),
                str(replies_write),
                str(chromium),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            pass_fds=(commands_read, replies_write),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(commands_read)
        os.close(replies_write)
        self._buffer = b""
        self._last_id = 0
        self.events: list[dict[str, Any]] = []

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer on the DevTools pipe")
            ready, _, _ = select.select([self._replies], [], [], left)
            if ready:
                chunk = os.read(self._replies, 1 << 16)
                if not chunk:
                    raise EOFError("Chromium closed the DevTools pipe")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        parsed: dict[str, Any] = json.loads(message)
        return parsed

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 60,
    ) -> dict[str, Any]:
        self._last_id += 1
        request: dict[str, Any] = {"id": self._last_id, "method": method, "params": params or {}}
        if session is not None:
            request["sessionId"] = session
        os.write(self._commands, json.dumps(request).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            message = self._message(deadline)
            if message.get("id") == self._last_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 60) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + timeout
        while True:
            message = self._message(deadline)
            self.events.append(message)
            if message.get("method") == method:
                return message

    def close(self) -> None:
        with contextlib.suppress(OSError, TimeoutError, EOFError, RuntimeError):
            self.send("Browser.close", timeout=10)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._replies)


def load_in_chromium(url: str, profile: Path) -> tuple[list[dict[str, Any]], list[list[Any]]]:
    """Open `url` in a fresh headless Chromium and wait for its load event:
    (the DevTools events, [complete, naturalWidth, naturalHeight] per image)."""
    tools = DevTools(ensure_chromium(), profile)
    try:
        targets = tools.send("Target.getTargets")["targetInfos"]
        page = next(target for target in targets if target["type"] == "page")
        session = tools.send(
            "Target.attachToTarget", {"targetId": page["targetId"], "flatten": True}
        )["sessionId"]
        for domain in ("Page", "Network", "Log", "Runtime"):
            tools.send(f"{domain}.enable", session=session)
        navigation = tools.send("Page.navigate", {"url": url}, session=session)
        assert "errorText" not in navigation, navigation
        tools.wait_for("Page.loadEventFired")
        images = tools.send(
            "Runtime.evaluate",
            {
                "expression": "JSON.stringify(Array.from(document.images).map("
                "i => [i.complete, i.naturalWidth, i.naturalHeight]))",
                "returnByValue": True,
            },
            session=session,
        )
        return tools.events, json.loads(images["result"]["value"])
    finally:
        tools.close()


def _failed_loads(events: list[dict[str, Any]]) -> list[str]:
    failures = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Network.loadingFailed":
            failures.append(f"{params.get('type')}: {params.get('errorText')}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            failures.append(f"{params['entry'].get('text')} {params['entry'].get('url', '')}")
        elif method == "Runtime.exceptionThrown":
            failures.append(str(params.get("exceptionDetails", {}).get("text")))
    return failures


def test_the_devtools_check_sees_a_failed_load(tmp_path: Path) -> None:
    """The negative control: a page with a missing image is caught."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><p>broken</p><img src="missing.png" alt="x">')
    events, images = load_in_chromium(page.as_uri(), tmp_path / "profile")
    assert images == [[True, 0, 0]]
    assert any("Failed to load resource" in failure for failure in _failed_loads(events))


def test_report_screenshot_in_headless_chromium(built: BuiltReport, tmp_path: Path) -> None:
    url = built.result.html.resolve().as_uri()
    screenshot = tmp_path / "report.png"
    shot = _chromium(
        tmp_path / "profile",
        f"--screenshot={screenshot}",
        "--window-size=1280,4000",
        "--hide-scrollbars",
        url,
    )
    assert screenshot.exists(), shot.stdout + shot.stderr[-3000:]
    with Image.open(screenshot) as image:
        assert image.size == (1280, 4000)
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    colours = np.unique(pixels, axis=0)
    assert len(colours) > 500, f"the screenshot looks blank: {len(colours)} colours"
    assert (pixels.min(axis=1) < 200).mean() > 0.01, "the screenshot has almost no ink"
    # The flowchart's exclusion boxes (#f7e1dc) and evaluable box (#dff0e3)
    # exist only in the embedded image: it was decoded and drawn.
    assert _near(pixels, (0xF7, 0xE1, 0xDC)) > 2_000
    assert _near(pixels, (0xDF, 0xF0, 0xE3)) > 2_000
    shutil.copy(screenshot, built.result.reports_dir / "screenshot.png")


def test_report_loads_without_failed_resources(built: BuiltReport, tmp_path: Path) -> None:
    html_path = built.result.html.resolve()
    url = html_path.as_uri()

    # The DOM as Chromium built it, with its log on stderr.
    dump = _chromium(
        tmp_path / "profile-dom", "--enable-logging=stderr", "--v=0", "--dump-dom", url
    )
    assert dump.returncode == 0, dump.stderr[-3000:]
    dom = _parse(dump.stdout)
    assert len([tag for tag, _ in dom.tags if tag == "img"]) == 5
    assert "Patient characteristics (Table 1)" in " ".join(dom.text)
    logged = [
        line
        for line in dump.stderr.splitlines()
        if "Failed to load resource" in line
        or ("ERR_" in line and ("file://" in line or html_path.name in line or "net::" in line))
    ]
    assert not logged, "\n".join(logged)

    # Chromium's own account of the page load, over the DevTools protocol:
    # no failed request, no console error, every image decoded.
    events, images = load_in_chromium(url, tmp_path / "profile-devtools")
    assert not _failed_loads(events), _failed_loads(events)
    requested = [
        event["params"]["request"]["url"]
        for event in events
        if event.get("method") == "Network.requestWillBeSent"
    ]
    assert requested and all(u == url or u.startswith("data:") for u in requested), [
        u[:80] for u in requested
    ]
    assert len(images) == 5
    for complete, width, height in images:
        assert complete and width > 500 and height > 300, images

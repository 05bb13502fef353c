"""A synthetic SDTM cohort of any size, generated inside DuckDB (`hpd synth`).

`generate(subjects, out_dir)` writes the seven exports the warehouse reads
(`dm`, `ex`, `tu`, `tr`, `ds`, `qs`, `sc`, as `.csv` or `.parquet`, SDTM column
names in upper case) for a cohort of immunotherapy trials in digestive-system
cancers. Every row is computed by SQL from `range()`; nothing loops over rows in
Python, so a million subjects (about 17 million TR rows, 4.4 GB of CSV) take
20-35 s on this project's 2-vCPU machine, with memory bounded by the chunk size
(about 0.5 GB), not by N. `python -m hpd.synth N OUT [--format parquet]`
prints the figures.

How it is built
---------------
- **Pseudo-randomness** is a pure function of the seed and the row's
  coordinates: `u(tag, subject, ...) = hash(hash(seed, tag, subject, ...)) / 2^64`
  (DuckDB's `hash`, re-hashed because its multi-argument combination alone
  leaves neighbouring tags correlated), never `random()`. The same seed gives
  the same rows, whatever the number of threads or the chunk size.
- **Chunks.** Subjects are cut into chunks of `chunk_size`; a pool of
  `threads` workers, each with its own single-threaded in-memory DuckDB
  (`memory_limit` split between them), materialises the subject-level draws
  of a chunk, then runs one `SELECT` per domain over `unnest()`s of them. A
  single-threaded DuckDB pipeline keeps rows in the order it generates them
  (checked by the tests), so a chunk lists its subjects in order. For CSV the
  `SELECT` builds each line itself (`concat_ws`, newline included; no value
  needs quoting) and the main thread writes the Arrow string buffer of the
  result as it is, chunk after chunk: one write of each byte, no row loop in
  Python. For Parquet the `SELECT` gives typed columns (numbers as integers or
  decimals, dates as ISO 8601 text, as SDTM has them), appended chunk after
  chunk by one `pyarrow` writer per file. At most `threads + 1` chunks are in
  memory, so memory does not grow with N (about 0.5 GB at the defaults).
  CSV files are byte-identical for a seed and a DuckDB version, whatever
  `threads` and `chunk_size`; Parquet files hold the same rows, and loading
  either gives the same `raw` tables.
- **Order.** Each file is sorted by study, subject and sequence (TR: reader,
  visit, lesion). `--SEQ` numbers are unique per subject but not contiguous
  in TR (reader x 500 + visit x 20 + lesion slot + 1).

The cohort
----------
Studies (`STUDYID` `SYN-<drug>-1nn`, consecutive blocks of subjects; USUBJID is
`STUDYID-nnnnnn`) cycle through PD-1, PD-L1 and combination regimens
(durvalumab + tremelimumab, nivolumab + ipilimumab, pembrolizumab +
oxaliplatin), dosed IV every 2, 3 or 4 weeks, one EX row per administration.
First doses are spread over 2016-2019. A share of subjects
(`screen_failure_share`, default 2%) fail screening: DM, DS, QS and SC rows,
never treated.

Each treated subject gets one designed evaluability status (SPEC §2) and one
tumour-kinetics group, independently:

| status (of treated subjects) | intended share | how |
|---|---|---|
| `no_baseline_scan` | 5% | no scan at all (40%), or the screening scan 45-110 days before the dose |
| `no_first_evaluation` | 15% | treatment stopped 8-38 days after the dose (DS: ADVERSE EVENT, PROGRESSIVE DISEASE, DEATH, ...), no later scan |
| `no_pre_baseline_scan` | 25% | no earlier scan (65%), or one 200-400 days before the baseline (outside the 183-day window) |
| `incomplete_measurements` | 5% | one target lesion `TRSTAT NOT DONE` or missing at the pre-baseline, baseline or first evaluation |
| `evaluable` | 50% | the rest |

Visits: the pre-baseline scan 30-120 days before the baseline, the baseline
(`SCREENING`) 0-30 days before the first dose, evaluations every 6, 7, 8 or 9
weeks (per subject, +/- 3 days) while on treatment.

Lesions: 1-5 target lesions (20% `LYMPH NODE`, measured by the short axis
`LPERP`; the others by `LDIAM` in the liver, lung, peritoneum, ...), 0-3
non-target lesions (`TUMSTATE` `PRESENT`, `ABSENT`, `UNEQUIVOCAL`, sometimes
`UNEQUIVOCAL PROGRESSION`), and on a share of subjects 1-3 new lesions after
the dose (measurable, measured below the measurability threshold, or
`TUMSTATE` only: `PRESENT`, `EQUIVOCAL`, `UNEQUIVOCAL`). Some 1.5% of target
measurements after the first evaluation are `NOT DONE` and 1% are missing.

Growth: a target lesion of baseline size d changes linearly,
`d * (1 + r * (1 + e) * months)`, with the subject's rate `r` (r_pre before
the baseline, r_post after it, per month, relative to the baseline size) and
the lesion's heterogeneity `e` in [-0.3, 0.3]; sizes are rounded to 0.1 mm.
Kinetics groups: hyperprogressors (`hpd_among_evaluable`, default 10%:
r_pre 0.08-0.16, r_post = 3.5-6 x r_pre, so TGKR >= 2 with TGK_pre > 0; 70%
with new lesions at the first evaluation, mostly measurable); the others split
into pre-treatment non-growers (12%: r_pre exactly 0, so identical diameters
at the pre-baseline and baseline scans, or negative), responders (20%:
r_post -0.04..-0.2), stable disease (33%: r_post = -0.5..0.5 x r_pre) and
progressors (35%: r_post = 0.5-1.2 x r_pre), with r_pre 0.08-0.25 (at most a
45% change back to the pre-baseline scan). The margins survive the rounding
to 0.1 mm (a change of at least 0.4 mm per lesion before treatment, ratios
3.5 against 1.2), and new lesions measurable at the first evaluation are only
given to hyperprogressors, so they never turn another subject into one: the
warehouse finds exactly the designed statuses and hyperprogressors.
`SynthSummary.designed` counts them, `SynthSummary.intended` gives the shares.
(Identical diameters at the pre-baseline and baseline scans give a TGK_pre of
exactly 0, as the warehouse sums diameters as exact decimals.)

Readers: `independent_share` (default 10%) of the subjects with scans are
also read by an `INDEPENDENT ASSESSOR` (`TREVALID` `RADIOLOGIST 1`, lesion ids
`R1-T01`, ..., `TRACPTFL` `Y`, its own TU rows, sizes within +/- 6% of the
investigator's); 30% of those by a second radiologist too (`R2-`), one of the
two accepted. Units: one study reports `TRORRES` in cm (`TRSTRESN` in mm); 3%
of the other subjects have cm results only (`TRORRES`/`TRORRESU`). 5% of
subjects have scan dates with a time (`2017-03-02T10:30`); 5% of dates of
death are partial (`YYYY-MM`, only when the month starts after the last scan).
DS holds the informed consent, the discontinuation and the death; DM the death
(`DTHDTC`, `DTHFL`) and the end of participation; QS ECOG (`ECOG101`) at
baseline (97%) and for 40% of subjects once 3-8 weeks after the first dose;
SC `PRIMSITE`, `HISTOL`, `METSITES`, and for some `MMR` and `PDL1CPS`.

No row is rejected by the warehouse, and the exports quality suite finds no
blocking failure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

FileFormat = Literal["csv", "parquet"]
DOMAINS = ("dm", "ex", "tu", "tr", "ds", "qs", "sc")
STATUSES = (
    "no_baseline_scan",
    "no_first_evaluation",
    "no_pre_baseline_scan",
    "incomplete_measurements",
    "evaluable",
)
_STATUS_CODES = ("NB", "NF", "NP", "IM", "EV")
DAYS_PER_MONTH = 30.4375
_TWO_POW_64 = "18446744073709551616.0"


@dataclass(frozen=True)
class Shares:
    """The intended evaluability shares (of treated subjects) and HPD share.

    `evaluable` is what the four others leave; `hpd_among_evaluable` is the
    share of evaluable subjects designed as hyperprogressors (TGK_pre > 0 and
    TGKR >= 2).
    """

    no_baseline_scan: float = 0.05
    no_first_evaluation: float = 0.15
    no_pre_baseline_scan: float = 0.25
    incomplete_measurements: float = 0.05
    hpd_among_evaluable: float = 0.10

    @property
    def evaluable(self) -> float:
        return 1.0 - (
            self.no_baseline_scan
            + self.no_first_evaluation
            + self.no_pre_baseline_scan
            + self.incomplete_measurements
        )

    def by_status(self) -> dict[str, float]:
        return {
            "no_baseline_scan": self.no_baseline_scan,
            "no_first_evaluation": self.no_first_evaluation,
            "no_pre_baseline_scan": self.no_pre_baseline_scan,
            "incomplete_measurements": self.incomplete_measurements,
            "evaluable": self.evaluable,
        }

    def validate(self) -> None:
        values = [*self.by_status().values(), self.hpd_among_evaluable]
        if any(not -1e-9 <= value <= 1.0 for value in values):
            raise ValueError(f"shares must lie in [0, 1] and leave evaluable >= 0: {self}")


@dataclass
class SynthSummary:
    """What `generate` wrote and what it designed.

    `intended`: the shares promised (per status among treated subjects,
    `hpd_among_evaluable`, `screen_failure`, `independent_read` among subjects
    with scans). `designed`: the counts the generator actually drew
    (`treated`, `screen_failures`, one per status, `hpd`, `independent_read`,
    `with_scans`): with the default settings the warehouse finds exactly these
    statuses and these hyperprogressors (see the module docstring for the one
    exception, a warehouse rounding issue).
    """

    subjects: int
    seed: int
    file_format: FileFormat
    studies: int
    out_dir: Path
    files: dict[str, Path]
    rows: dict[str, int]
    bytes: dict[str, int]
    seconds: float
    intended: dict[str, float]
    designed: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        lines = [
            f"{self.subjects} subjects, {self.studies} studies, seed {self.seed}, "
            f"{self.file_format} in {self.out_dir}: {self.seconds:.1f} s",
        ]
        for domain in DOMAINS:
            lines.append(
                f"  {self.files[domain].name}: {self.rows[domain]} rows, "
                f"{self.bytes[domain] / 1e6:.1f} MB"
            )
        treated = max(self.designed.get("treated", 0), 1)
        for status in STATUSES:
            n = self.designed.get(status, 0)
            lines.append(
                f"  {status}: {n} ({n / treated:.1%}; intended {self.intended[status]:.1%})"
            )
        evaluable = max(self.designed.get("evaluable", 0), 1)
        hpd = self.designed.get("hpd", 0)
        lines.append(
            f"  hyperprogression (TGKR): {hpd} ({hpd / evaluable:.1%} of evaluable; "
            f"intended {self.intended['hpd_among_evaluable']:.1%})"
        )
        return "\n".join(lines)


# ---------------------------------------------------------------------------
# Study designs


@dataclass(frozen=True)
class _Study:
    code: str
    drug: str
    dose: float
    unit: str
    every_days: int
    arm: str
    drug2: str = ""
    dose2: float = 0.0
    unit2: str = ""
    doses2: int = 0
    results_in_cm: bool = False


_STUDY_DESIGNS = (
    _Study("CAM", "camrelizumab", 200, "mg", 14, "Camrelizumab 200 mg IV Q2W"),
    _Study("NIV", "nivolumab", 240, "mg", 14, "Nivolumab 240 mg IV Q2W"),
    _Study("ATZ", "atezolizumab", 1200, "mg", 21, "Atezolizumab 1200 mg IV Q3W"),
    _Study(
        "DT",
        "durvalumab",
        20,
        "mg/kg",
        28,
        "Durvalumab 20 mg/kg + Tremelimumab 1 mg/kg IV Q4W",
        "tremelimumab",
        1,
        "mg/kg",
        4,
        results_in_cm=True,
    ),
    _Study(
        "PMOX",
        "pembrolizumab",
        200,
        "mg",
        21,
        "Pembrolizumab 200 mg + Oxaliplatin 130 mg/m2 IV Q3W",
        "oxaliplatin",
        130,
        "mg/m2",
        6,
    ),
    _Study(
        "NI",
        "nivolumab",
        3,
        "mg/kg",
        21,
        "Nivolumab 3 mg/kg + Ipilimumab 1 mg/kg IV Q3W",
        "ipilimumab",
        1,
        "mg/kg",
        4,
    ),
    _Study("TOR", "toripalimab", 3, "mg/kg", 14, "Toripalimab 3 mg/kg IV Q2W"),
    _Study("SIN", "sintilimab", 200, "mg", 21, "Sintilimab 200 mg IV Q3W"),
    _Study("DUR", "durvalumab", 1500, "mg", 28, "Durvalumab 1500 mg IV Q4W"),
    _Study("TIS", "tislelizumab", 200, "mg", 21, "Tislelizumab 200 mg IV Q3W"),
)

_TARGET_ORGANS = (
    ("LIVER", 40),
    ("LUNG", 25),
    ("PERITONEUM", 8),
    ("ADRENAL GLAND", 5),
    ("PANCREAS", 4),
    ("STOMACH", 4),
    ("ESOPHAGUS", 3),
    ("SOFT TISSUE", 3),
    ("SPLEEN", 2),
    ("KIDNEY", 2),
    ("PLEURA", 2),
    ("OVARY", 2),
)
_NON_TARGET_ORGANS = (
    ("LYMPH NODE", 25),
    ("BONE", 20),
    ("PERITONEUM", 20),
    ("LIVER", 12),
    ("LUNG", 10),
    ("PLEURA", 5),
    ("ADRENAL GLAND", 4),
    ("BRAIN", 2),
    ("SPLEEN", 2),
)
_NEW_ORGANS = (
    ("LIVER", 35),
    ("LUNG", 25),
    ("BONE", 10),
    ("PERITONEUM", 10),
    ("ADRENAL GLAND", 6),
    ("BRAIN", 4),
    ("SPLEEN", 4),
    ("KIDNEY", 3),
    ("SOFT TISSUE", 3),
)
_PRIMARY_SITES = (
    ("STOMACH", 28),
    ("COLORECTAL", 25),
    ("ESOPHAGUS", 22),
    ("LIVER", 12),
    ("PANCREAS", 6),
    ("BILIARY TRACT", 5),
    ("AMPULLA", 2),
)
# Kinetics groups (shares of what the hyperprogressors leave).
_GROUPS = (("NONPOS", 0.12), ("RESP", 0.20), ("STAB", 0.33), ("PROG", 0.35))


# ---------------------------------------------------------------------------
# SQL helpers

_TAGS = {
    name: number
    for number, name in enumerate(
        (
            "screen_failure",
            "first_dose",
            "status",
            "group",
            "site",
            "sex",
            "age1",
            "age2",
            "age3",
            "targets",
            "non_targets",
            "cycle",
            "baseline_gap",
            "no_scan",
            "has_pre",
            "pre_gap",
            "n_eval",
            "jitter",
            "stop",
            "stop_day",
            "reason",
            "term",
            "death",
            "death_day",
            "partial_death",
            "follow_up",
            "r_pre",
            "r_pre_sign",
            "k",
            "r_post",
            "has_new",
            "n_new",
            "new_visit",
            "pseudo",
            "im_visit",
            "im_lesion",
            "im_omit",
            "readers",
            "accepted",
            "cm_only",
            "with_time",
            "hour",
            "method",
            "ecog",
            "ecog_post",
            "ecog_post_day",
            "ecog_delta",
            "ecog_base",
            "consent",
            "sf_day",
            "nodal",
            "organ",
            "size",
            "hetero",
            "missing",
            "nt_organ",
            "nt_state",
            "nt_absent",
            "new_nodal",
            "new_organ",
            "new_kind",
            "new_size",
            "new_state",
            "reader_noise",
            "primsite",
            "histol",
            "metsites",
            "mmr",
            "mmr_value",
            "pdl1",
            "pdl1_value",
        ),
        start=1,
    )
}


def _sql_text(value: str) -> str:
    if re.search(r"[,\"\n\r]", value):
        raise ValueError(f"value {value!r} would need CSV quoting")
    return "'" + value.replace("'", "''") + "'"


def _case(draw: str, choices: Sequence[tuple[str, float]], *, quote: bool = True) -> str:
    """A CASE picking one of `choices` (value, weight) by a uniform draw."""
    if len(choices) == 1:
        return _sql_text(choices[0][0]) if quote else choices[0][0]
    total = float(sum(weight for _, weight in choices))
    parts = []
    cumulative = 0.0
    for value, weight in choices[:-1]:
        cumulative += weight / total
        parts.append(f"when {draw} < {cumulative!r} then {_sql_text(value) if quote else value}")
    last = _sql_text(choices[-1][0]) if quote else choices[-1][0]
    return f"case {' '.join(parts)} else {last} end"


def _list(values: Sequence[object]) -> str:
    items = []
    for value in values:
        if isinstance(value, bool):
            items.append("true" if value else "false")
        elif isinstance(value, str):
            items.append(_sql_text(value))
        else:
            items.append(repr(value))
    return "[" + ", ".join(items) + "]"


class _Sql:
    """SQL text of one generation, with the seed baked into every draw."""

    def __init__(self, seed: int, subjects: int, studies: int) -> None:
        self.seed = seed
        self.n = subjects
        self.studies = studies

    def u(self, tag: str, *coordinates: str) -> str:
        """A uniform draw in [0, 1) from the seed, a tag and the coordinates."""
        args = ", ".join(
            [f"{self.seed}::BIGINT", f"{_TAGS[tag]}::BIGINT"]
            + [f"({c})::BIGINT" for c in coordinates]
        )
        return f"(hash(hash({args})) / {_TWO_POW_64})"

    def ui(self, tag: str, low: int, high: int, *coordinates: str) -> str:
        """A uniform integer in [low, high]."""
        return f"({low} + cast(floor({self.u(tag, *coordinates)} * {high - low + 1}) as INTEGER))"


# ---------------------------------------------------------------------------
# The subjects of one chunk: every subject-level draw, materialised once


def _subjects_sql(
    q: _Sql, low: int, high: int, shares: Shares, independent: float, screen_failure: float
) -> str:
    designs = [_STUDY_DESIGNS[k % len(_STUDY_DESIGNS)] for k in range(q.studies)]
    study_ids = [f"SYN-{d.code}-{101 + k}" for k, d in enumerate(designs)]
    u = q.u
    ui = q.ui
    cuts = []
    cumulative = 0.0
    for value in shares.by_status().values():
        cumulative += value
        cuts.append(cumulative)
    status = (
        "case when screen_failure then null "
        + " ".join(
            f"when status_draw < {cut!r} then '{code}'"
            for cut, code in zip(cuts[:-1], _STATUS_CODES[:-1], strict=True)
        )
        + " else 'EV' end"
    )
    h = shares.hpd_among_evaluable
    group_choices = [("HPD", h)] + [(name, share * (1 - h)) for name, share in _GROUPS]
    group = _case(u("group", "i"), [(g, w) for g, w in group_choices if w > 0])
    jitter_last = f"({ui('jitter', 0, 6, 'i', 'n_eval')} - 3)"
    reason_nf = _case(
        u("reason", "i"),
        [
            ("ADVERSE EVENT", 35),
            ("PROGRESSIVE DISEASE", 30),
            ("DEATH", 15),
            ("WITHDRAWAL BY SUBJECT", 10),
            ("PHYSICIAN DECISION", 10),
        ],
    )
    reason_by_group = {
        "HPD": [("PROGRESSIVE DISEASE", 85), ("DEATH", 10), ("ADVERSE EVENT", 5)],
        "PROG": [("PROGRESSIVE DISEASE", 85), ("ADVERSE EVENT", 10), ("WITHDRAWAL BY SUBJECT", 5)],
        "STAB": [
            ("PROGRESSIVE DISEASE", 60),
            ("ADVERSE EVENT", 25),
            ("WITHDRAWAL BY SUBJECT", 10),
            ("PHYSICIAN DECISION", 5),
        ],
        "RESP": [
            ("ADVERSE EVENT", 60),
            ("WITHDRAWAL BY SUBJECT", 20),
            ("PHYSICIAN DECISION", 20),
        ],
        "NONPOS": [
            ("PROGRESSIVE DISEASE", 50),
            ("ADVERSE EVENT", 30),
            ("WITHDRAWAL BY SUBJECT", 20),
        ],
    }
    reason_groups = " ".join(
        f"when grp = '{g}' then {_case(u('reason', 'i'), choices)}"
        for g, choices in reason_by_group.items()
    )
    stages: list[list[tuple[str, str]]] = [
        [
            ("k", f"(i * {q.studies}) // {q.n}"),
            ("screen_failure", f"{u('screen_failure', 'i')} < {screen_failure!r}"),
            ("d0", f"date '2016-01-04' + {ui('first_dose', 0, 1460, 'i')}"),
            ("status_draw", u("status", "i")),
            ("grp", group),
            ("sex", f"case when {u('sex', 'i')} < 0.65 then 'M' else 'F' end"),
            (
                "age",
                f"greatest(18, least(88, cast(round(62 + 20 * ({u('age1', 'i')} "
                f"+ {u('age2', 'i')} + {u('age3', 'i')} - 1.5)) as INTEGER)))",
            ),
            ("method", f"case when {u('method', 'i')} < 0.9 then 'CT SCAN' else 'MRI' end"),
            (
                "nt",
                _case(
                    u("targets", "i"),
                    [("1", 30), ("2", 30), ("3", 20), ("4", 12), ("5", 8)],
                    quote=False,
                ),
            ),
            (
                "nnt",
                _case(
                    u("non_targets", "i"), [("0", 40), ("1", 35), ("2", 17), ("3", 8)], quote=False
                ),
            ),
            ("cyc", f"42 + 7 * {ui('cycle', 0, 3, 'i')}"),
            ("with_time", f"{u('with_time', 'i')} < 0.05"),
            ("ecog", _case(u("ecog", "i"), [("0", 38), ("1", 55), ("2", 7)], quote=False)),
            ("has_ecog", f"{u('ecog_base', 'i')} < 0.97"),
            ("im_v", ui("im_visit", 0, 2, "i")),
            ("readers_draw", u("readers", "i")),
        ],
        [
            ("subjno", f"i - ((k * {q.n} + {q.studies} - 1) // {q.studies}) + 1"),
            ("design", f"k % {len(_STUDY_DESIGNS)}"),
            ("studyid", f"{_list(study_ids)}[k + 1]"),
            ("siteid", f"cast((k + 1) * 100 + {ui('site', 1, 30, 'i')} as VARCHAR)"),
            ("drug", f"{_list([d.drug for d in designs])}[k + 1]"),
            ("dose", f"{_list([d.dose for d in designs])}[k + 1]"),
            ("dose_unit", f"{_list([d.unit for d in designs])}[k + 1]"),
            ("every_days", f"{_list([d.every_days for d in designs])}[k + 1]"),
            ("arm", f"{_list([d.arm for d in designs])}[k + 1]"),
            ("drug2", f"{_list([d.drug2 for d in designs])}[k + 1]"),
            ("dose2", f"{_list([d.dose2 for d in designs])}[k + 1]"),
            ("dose2_unit", f"{_list([d.unit2 for d in designs])}[k + 1]"),
            ("doses2", f"{_list([d.doses2 for d in designs])}[k + 1]"),
            ("study_in_cm", f"{_list([d.results_in_cm for d in designs])}[k + 1]"),
            ("status", status),
            (
                "r_pre_draw",
                f"""case when grp = 'NONPOS' then
                    case when {u("r_pre_sign", "i")} < 0.5 then 0.0
                        else -(0.05 + 0.07 * {u("r_pre", "i")}) end
                when grp = 'HPD' then 0.08 + 0.08 * {u("r_pre", "i")}
                else 0.08 + 0.17 * {u("r_pre", "i")} end""",
            ),
            ("im_j", f"cast(floor({u('im_lesion', 'i')} * nt) as INTEGER)"),
            ("im_omit", f"nt >= 2 and {u('im_omit', 'i')} < 0.5"),
            ("pseudo_draw", u("pseudo", "i")),
        ],
        [
            ("usubjid", "studyid || '-' || lpad(cast(subjno as VARCHAR), 6, '0')"),
            (
                "has_scan",
                f"not screen_failure and not (status = 'NB' and {u('no_scan', 'i')} < 0.4)",
            ),
            (
                "base_day",
                f"case when status = 'NB' then -{ui('baseline_gap', 45, 110, 'i')} "
                f"else -{ui('baseline_gap', 0, 30, 'i')} end",
            ),
            (
                "gap_pre",
                f"case when status = 'NP' then {ui('pre_gap', 200, 400, 'i')} "
                f"else {ui('pre_gap', 30, 120, 'i')} end",
            ),
            (
                "unit_style",
                f"case when study_in_cm then 1 when {u('cm_only', 'i')} < 0.03 then 2 else 0 end",
            ),
            ("pseudo", "grp = 'RESP' and nnt > 0 and pseudo_draw < 0.15"),
        ],
        [
            (
                "has_pre",
                f"""has_scan and case status
                    when 'EV' then true when 'IM' then true
                    when 'NF' then {u("has_pre", "i")} < 0.75
                    when 'NP' then {u("has_pre", "i")} < 0.35
                    else false end""",
            ),
            ("pre_day", "base_day - gap_pre"),
            (
                "n_eval",
                f"""case when screen_failure or status = 'NF' or not has_scan then 0
                    when grp = 'HPD' then 1 + ({u("n_eval", "i")} < 0.3)::INTEGER
                    when grp = 'PROG' then {ui("n_eval", 1, 3, "i")}
                    when grp = 'STAB' then {ui("n_eval", 2, 6, "i")}
                    when grp = 'RESP' then {ui("n_eval", 2, 8, "i")}
                    else {ui("n_eval", 1, 6, "i")} end""",
            ),
            (
                # at most 45% smaller at the pre-baseline scan, whatever the lesion
                "r_pre",
                f"case when r_pre_draw > 0 then least(r_pre_draw, "
                f"0.45 * {DAYS_PER_MONTH} / (1.3 * gap_pre)) else r_pre_draw end",
            ),
            (
                "nreaders",
                f"""case when not has_scan then 0
                    when readers_draw < {independent * 0.3!r} then 3
                    when readers_draw < {independent!r} then 2
                    else 1 end""",
            ),
            (
                "consent_day",
                f"""case when screen_failure then -{ui("consent", 5, 20, "i")}
                    when has_scan then least(base_day, 0) - {ui("consent", 1, 10, "i")}
                    else -{ui("consent", 1, 14, "i")} end""",
            ),
        ],
        [
            ("last_eval_day", f"case when n_eval > 0 then n_eval * cyc + {jitter_last} end"),
            (
                "stopped",
                f"""not screen_failure and (n_eval = 0 or {u("stop", "i")} < case grp
                    when 'HPD' then 1.0 when 'PROG' then 0.95 when 'STAB' then 0.6
                    when 'RESP' then 0.3 else 0.5 end)""",
            ),
            (
                "r_post",
                f"""case grp
                    when 'HPD' then r_pre * (3.5 + 2.5 * {u("k", "i")})
                    when 'PROG' then r_pre * (0.5 + 0.7 * {u("k", "i")})
                    when 'STAB' then r_pre * (-0.5 + 1.0 * {u("k", "i")})
                    when 'RESP' then -(0.04 + 0.16 * {u("r_post", "i")})
                    else -0.15 + 0.4 * {u("r_post", "i")} end""",
            ),
            (
                "has_new",
                f"""n_eval > 0 and {u("has_new", "i")} < case grp
                    when 'HPD' then 0.7 when 'PROG' then 0.5 when 'STAB' then 0.15
                    when 'RESP' then 0.05 else 0.2 end""",
            ),
            (
                "e_app",
                f"case when grp = 'HPD' then 1 "
                f"else 1 + cast(floor({u('new_visit', 'i')} * n_eval) as INTEGER) end",
            ),
            (
                "accepted",
                f"case when nreaders = 3 and {u('accepted', 'i')} < 0.5 then 2 else 1 end",
            ),
            ("sf_day", f"consent_day + {ui('sf_day', 5, 15, 'i')}"),
        ],
        [
            (
                "stop_day",
                f"""case when not stopped then null
                    when status = 'NF' then {ui("stop_day", 8, 38, "i")}
                    when n_eval = 0 then {ui("stop_day", 30, 180, "i")}
                    else last_eval_day + {ui("stop_day", 1, 10, "i")} end""",
            ),
            (
                "reason",
                f"case when not stopped then null when n_eval = 0 then {reason_nf} "
                f"{reason_groups} end",
            ),
            ("nnew", f"case when has_new then {ui('n_new', 1, 3, 'i')} else 0 end"),
        ],
        [
            (
                "died",
                f"""stopped and (reason = 'DEATH' or {u("death", "i")} < case
                    when n_eval = 0 then 0.4 when grp = 'HPD' then 0.8
                    when grp = 'PROG' then 0.5 when grp = 'RESP' then 0.05 else 0.25 end)""",
            ),
            (
                "has_ecog_post",
                f"not screen_failure and coalesce(stop_day, 999) >= 21 "
                f"and {u('ecog_post', 'i')} < 0.4",
            ),
            (
                "ecog_post_day",
                f"21 + cast(floor({u('ecog_post_day', 'i')} "
                f"* (least(coalesce(stop_day, 56), 56) - 20)) as INTEGER)",
            ),
            (
                "ecog_post",
                f"""greatest(0, least(4, ecog + case
                    when grp = 'HPD' then 1 + ({u("ecog_delta", "i")} < 0.3)::INTEGER
                    else {ui("ecog_delta", -1, 1, "i")} end))""",
            ),
        ],
        [
            (
                "death_day",
                f"""case when not died then null when reason = 'DEATH' then stop_day
                    when grp = 'HPD' then stop_day + {ui("death_day", 7, 120, "i")}
                    when grp = 'PROG' then stop_day + {ui("death_day", 7, 300, "i")}
                    else stop_day + {ui("death_day", 7, 400, "i")} end""",
            ),
        ],
        [
            (
                "death_partial",
                f"died and reason <> 'DEATH' and {u('partial_death', 'i')} < 0.05 "
                "and date_trunc('month', d0 + death_day) > d0 + stop_day",
            ),
            (
                "end_day",
                f"""case when screen_failure then null when died then death_day
                    when stopped then stop_day + {ui("follow_up", 30, 180, "i")}
                    else last_eval_day + {ui("follow_up", 0, 30, "i")} end""",
            ),
        ],
        [
            (
                "n_doses",
                """case when screen_failure then 0
                    when stopped then (greatest(stop_day - 1, 0) // every_days) + 1
                    else (end_day // every_days) + 1 end""",
            ),
        ],
        [("n_doses2", "case when drug2 = '' then 0 else least(n_doses, doses2) end")],
    ]
    sql = f"select range as i from range({low}, {high})"
    for stage in stages:
        items = ",\n    ".join(f"{expr} as {name}" for name, expr in stage)
        sql = f"select *,\n    {items}\nfrom ({sql})"
    return sql


# ---------------------------------------------------------------------------
# The domains: (column, SQL expression, type) and the rows they come from

_Column = tuple[str, str, str]


def _dm(q: _Sql) -> tuple[list[_Column], str]:
    columns = [
        ("STUDYID", "studyid", "VARCHAR"),
        ("DOMAIN", "'DM'", "VARCHAR"),
        ("USUBJID", "usubjid", "VARCHAR"),
        ("SUBJID", "lpad(cast(subjno as VARCHAR), 6, '0')", "VARCHAR"),
        ("SITEID", "siteid", "VARCHAR"),
        ("RFXSTDTC", "case when not screen_failure then cast(d0 as VARCHAR) end", "VARCHAR"),
        (
            "RFPENDTC",
            "cast(d0 + case when screen_failure then sf_day else end_day end as VARCHAR)",
            "VARCHAR",
        ),
        (
            "DTHDTC",
            "case when death_partial then strftime(d0 + death_day, '%Y-%m') "
            "when died then cast(d0 + death_day as VARCHAR) end",
            "VARCHAR",
        ),
        ("DTHFL", "case when died then 'Y' end", "VARCHAR"),
        ("SEX", "sex", "VARCHAR"),
        ("AGE", "age", "INTEGER"),
        ("AGEU", "'YEARS'", "VARCHAR"),
        (
            "ARMCD",
            "case when screen_failure then 'SCRNFAIL' else 'ARM' || cast(design + 1 as VARCHAR) end",
            "VARCHAR",
        ),
        ("ARM", "case when screen_failure then 'Screen Failure' else arm end", "VARCHAR"),
    ]
    return columns, "from subjects"


def _ex(q: _Sql) -> tuple[list[_Column], str]:
    columns = [
        ("STUDYID", "studyid", "VARCHAR"),
        ("DOMAIN", "'EX'", "VARCHAR"),
        ("USUBJID", "usubjid", "VARCHAR"),
        ("EXSEQ", "dose_index + least(dose_index, n_doses2) + second::INTEGER + 1", "INTEGER"),
        ("EXTRT", "case when second then drug2 else drug end", "VARCHAR"),
        (
            "EXDOSE",
            "cast(case when second then dose2 else dose end as DECIMAL(7,1))",
            "DECIMAL(7,1)",
        ),
        ("EXDOSU", "case when second then dose2_unit else dose_unit end", "VARCHAR"),
        ("EXROUTE", "'INTRAVENOUS'", "VARCHAR"),
        ("EXSTDTC", "cast(d0 + cast(dose_index * every_days as INTEGER) as VARCHAR)", "VARCHAR"),
        ("EXENDTC", "cast(d0 + cast(dose_index * every_days as INTEGER) as VARCHAR)", "VARCHAR"),
    ]
    source = """
from (
    select *, slot // 2 as dose_index, slot % 2 = 1 as second
    from (select *, unnest(range(n_doses * 2)) as slot from subjects where not screen_failure)
)
where not second or dose_index < n_doses2
"""
    return columns, source


def _ds(q: _Sql) -> tuple[list[_Column], str]:
    u = q.u
    ae_term = _case(
        u("term", "i"),
        [
            ("IMMUNE-RELATED PNEUMONITIS", 30),
            ("IMMUNE-RELATED COLITIS", 25),
            ("IMMUNE-RELATED HEPATITIS", 25),
            ("INFUSION-RELATED REACTION", 10),
            ("MYOCARDITIS", 10),
        ],
    )
    term = f"""case
        when slot = 0 then 'INFORMED CONSENT OBTAINED'
        when slot = 1 and screen_failure then 'DID NOT MEET ELIGIBILITY CRITERIA'
        when slot = 2 or reason = 'DEATH' then 'DEATH'
        when reason = 'PROGRESSIVE DISEASE' and n_eval = 0 then 'CLINICAL PROGRESSION'
        when reason = 'PROGRESSIVE DISEASE' then 'RADIOLOGICAL PROGRESSION'
        when reason = 'ADVERSE EVENT' then {ae_term}
        when reason = 'WITHDRAWAL BY SUBJECT' then 'WITHDRAWAL OF CONSENT'
        else 'INVESTIGATOR DECISION' end"""
    decod = """case
        when slot = 0 then 'INFORMED CONSENT OBTAINED'
        when slot = 1 and screen_failure then 'SCREEN FAILURE'
        when slot = 2 then 'DEATH'
        else reason end"""
    date = """case
        when slot = 0 then cast(d0 + consent_day as VARCHAR)
        when slot = 1 and screen_failure then cast(d0 + sf_day as VARCHAR)
        when slot = 2 and death_partial then strftime(d0 + death_day, '%Y-%m')
        when slot = 2 or reason = 'DEATH' then cast(d0 + death_day as VARCHAR)
        else cast(d0 + stop_day as VARCHAR) end"""
    columns = [
        ("STUDYID", "studyid", "VARCHAR"),
        ("DOMAIN", "'DS'", "VARCHAR"),
        ("USUBJID", "usubjid", "VARCHAR"),
        ("DSSEQ", "slot + 1", "INTEGER"),
        ("DSTERM", term, "VARCHAR"),
        ("DSDECOD", decod, "VARCHAR"),
        (
            "DSCAT",
            "case when slot = 0 then 'PROTOCOL MILESTONE' else 'DISPOSITION EVENT' end",
            "VARCHAR",
        ),
        ("DSSTDTC", date, "VARCHAR"),
    ]
    source = """
from (
    select *, unnest(range(
        1 + (screen_failure or stopped)::INTEGER + (died and reason <> 'DEATH')::INTEGER
    )) as slot
    from subjects
)
"""
    return columns, source


def _qs(q: _Sql) -> tuple[list[_Column], str]:
    value = "case when slot = 0 then ecog else ecog_post end"
    columns = [
        ("STUDYID", "studyid", "VARCHAR"),
        ("DOMAIN", "'QS'", "VARCHAR"),
        ("USUBJID", "usubjid", "VARCHAR"),
        ("QSSEQ", "slot + 1", "INTEGER"),
        ("QSTESTCD", "'ECOG101'", "VARCHAR"),
        ("QSTEST", "'ECOG1-Performance Status'", "VARCHAR"),
        ("QSCAT", "'ECOG'", "VARCHAR"),
        ("QSORRES", f"cast({value} as VARCHAR)", "VARCHAR"),
        ("QSSTRESC", f"cast({value} as VARCHAR)", "VARCHAR"),
        ("QSSTRESN", value, "INTEGER"),
        (
            "QSDTC",
            "cast(d0 + case when slot = 1 then ecog_post_day "
            "when screen_failure then consent_day + 2 "
            "else -cast(floor(" + q.u("ecog", "i", "1") + " * 7) as INTEGER) end as VARCHAR)",
            "VARCHAR",
        ),
    ]
    source = """
from (
    select * from (
        select *, unnest(range(2)) as slot from subjects where has_ecog or has_ecog_post
    )
    where (slot = 0 and has_ecog) or (slot = 1 and has_ecog_post)
)
"""
    return columns, source


def _sc(q: _Sql) -> tuple[list[_Column], str]:
    u = q.u
    primsite = _case(u("primsite", "i"), _PRIMARY_SITES)
    histol = f"""case primsite
        when 'ESOPHAGUS' then case when {u("histol", "i")} < 0.85
            then 'SQUAMOUS CELL CARCINOMA' else 'ADENOCARCINOMA' end
        when 'STOMACH' then case when {u("histol", "i")} < 0.92
            then 'ADENOCARCINOMA' else 'NEUROENDOCRINE CARCINOMA' end
        when 'PANCREAS' then case when {u("histol", "i")} < 0.85
            then 'ADENOCARCINOMA' else 'NEUROENDOCRINE CARCINOMA' end
        when 'LIVER' then 'HEPATOCELLULAR CARCINOMA'
        when 'BILIARY TRACT' then 'CHOLANGIOCARCINOMA'
        else 'ADENOCARCINOMA' end"""
    mmr = f"""case when {u("mmr_value", "i")} < case when primsite = 'COLORECTAL' then 0.2
        else 0.08 end then 'dMMR' else 'pMMR' end"""
    pdl1 = f"""case when {u("pdl1_value", "i")} < 0.4 then '0' else cast(1 + cast(floor(
        pow({u("pdl1_value", "i", "1")}, 2) * 99) as INTEGER) as VARCHAR) end"""
    metsites = f"cast(1 + cast(floor(pow({u('metsites', 'i')}, 1.5) * 5) as INTEGER) as VARCHAR)"
    test_codes = _list(["PRIMSITE", "HISTOL", "METSITES", "MMR", "PDL1CPS"])
    test_names = _list(
        [
            "Primary Tumor Site",
            "Histologic Type",
            "Number of Metastatic Sites",
            "Mismatch Repair Status",
            "PD-L1 Combined Positive Score",
        ]
    )
    columns = [
        ("STUDYID", "studyid", "VARCHAR"),
        ("DOMAIN", "'SC'", "VARCHAR"),
        ("USUBJID", "usubjid", "VARCHAR"),
        ("SCSEQ", "slot + 1", "INTEGER"),
        ("SCTESTCD", f"{test_codes}[slot + 1]", "VARCHAR"),
        ("SCTEST", f"{test_names}[slot + 1]", "VARCHAR"),
        (
            "SCORRES",
            f"case slot when 0 then primsite when 1 then {histol} when 2 then {metsites} "
            f"when 3 then {mmr} else {pdl1} end",
            "VARCHAR",
        ),
    ]
    source = f"""
from (
    select *, {primsite} as primsite
    from (select *, unnest(range(5)) as slot from subjects)
)
where slot < 3
    or (slot = 3 and {u("mmr", "i")} < 0.55)
    or (slot = 4 and {u("pdl1", "i")} < 0.45)
"""
    return columns, source


# Lesion slots of a subject: 0-4 targets, 5-7 non-targets, 8-10 new lesions.
_LESION_SLOTS = "list_concat(range(0, nt), range(5, 5 + nnt), range(8, 8 + nnew))"


def _levels(source: str, *levels: str) -> str:
    """`source` with each level's columns added by its own projection.

    DuckDB expands a reference to a column alias of the same SELECT into the
    aliased expression, so a column used by several others is computed once
    only when it comes from a lower level.
    """
    sql = source
    for level in levels:
        sql = f"select *, {level}\nfrom ({sql})"
    return sql


def _visit_levels(q: _Sql) -> tuple[str, str, str]:
    """Visit-level columns from the visit slot `v` (0 pre-baseline, 1 screening, 2+ evaluations)."""
    hour = q.ui("hour", 8, 17, "i", "v")
    minute = q.ui("hour", 0, 59, "i", "v", "1")
    return (
        "v - 1 as e",
        f"""cast(case v when 0 then pre_day when 1 then base_day
            else e * cyc + cast(floor({q.u("jitter", "i", "e")} * 7) as INTEGER) - 3 end
            as INTEGER) as day""",
        f"""day - base_day as t,
        case v when 0 then 'PRE-BASELINE' when 1 then 'SCREENING'
            else 'WEEK ' || cast(round(day / 7) as INTEGER) end as visit,
        cast(d0 + day as VARCHAR) || case when with_time
            then 'T' || lpad(cast({hour} as VARCHAR), 2, '0') || ':'
                || lpad(cast({minute} as VARCHAR), 2, '0')
            else '' end as dtc""",
    )


def _lesion_levels(q: _Sql) -> tuple[str, str]:
    """Lesion-level columns from the reader `r` and the lesion slot `l`."""
    u = q.u
    new_kind = f"""case when l < 8 then null
        when grp = 'HPD' then {_case(u("new_kind", "i", "j"), [("M", 70), ("S", 15), ("T", 15)])}
        when e_app = 1 then {_case(u("new_kind", "i", "j"), [("S", 50), ("T", 50)])}
        else {_case(u("new_kind", "i", "j"), [("M", 50), ("S", 25), ("T", 25)])} end"""
    return (
        """case when l < 5 then 'TARGET' when l < 8 then 'NON-TARGET' else 'NEW' end
            as lesion_class,
        case when l < 5 then l when l < 8 then l - 5 else l - 8 end as j""",
        f"""case when r = 0 then '' else 'R' || cast(r as VARCHAR) || '-' end
            || case when l < 5 then 'T0' when l < 8 then 'NT0' else 'NEW0' end
            || cast(j + 1 as VARCHAR) as lesion_id,
        case when l < 5 then {u("nodal", "i", "j")} < 0.2
            when l >= 8 then {u("new_nodal", "i", "j")} < 0.25
            else false end as nodal,
        -- new lesions: M measurable, S measured below the threshold, T TUMSTATE only
        {new_kind} as new_kind""",
    )


def _tu(q: _Sql) -> tuple[list[_Column], str]:
    u = q.u
    organ = f"""case when nodal then 'LYMPH NODE'
        when l < 5 then {_case(u("organ", "i", "j"), _TARGET_ORGANS)}
        when l < 8 then {_case(u("nt_organ", "i", "j"), _NON_TARGET_ORGANS)}
        else {_case(u("new_organ", "i", "j"), _NEW_ORGANS)} end as organ,
        -- identified at the screening scan, new lesions when they appear
        case when l < 8 then 1 else 1 + e_app end as v"""
    columns = [
        ("STUDYID", "studyid", "VARCHAR"),
        ("DOMAIN", "'TU'", "VARCHAR"),
        ("USUBJID", "usubjid", "VARCHAR"),
        ("TUSEQ", "r * 20 + l + 1", "INTEGER"),
        ("TULNKID", "lesion_id", "VARCHAR"),
        ("TUTESTCD", "'TUMIDENT'", "VARCHAR"),
        ("TUTEST", "'Tumor Identification'", "VARCHAR"),
        ("TUORRES", "lesion_class", "VARCHAR"),
        ("TUSTRESC", "lesion_class", "VARCHAR"),
        ("TULOC", "organ", "VARCHAR"),
        ("TUMETHOD", "method", "VARCHAR"),
        (
            "TUEVAL",
            "case when r = 0 then 'INVESTIGATOR' else 'INDEPENDENT ASSESSOR' end",
            "VARCHAR",
        ),
        ("TUEVALID", "case when r > 0 then 'RADIOLOGIST ' || cast(r as VARCHAR) end", "VARCHAR"),
        ("TUACPTFL", "case when r > 0 and r = accepted then 'Y' end", "VARCHAR"),
        ("VISITNUM", "v + 1", "INTEGER"),
        ("VISIT", "visit", "VARCHAR"),
        ("TUDTC", "dtc", "VARCHAR"),
    ]
    rows = f"""select *, unnest({_LESION_SLOTS}) as l
        from (select *, unnest(range(nreaders)) as r from subjects)"""
    source = _levels(rows, *_lesion_levels(q), organ, *_visit_levels(q))
    return columns, f"from ({source})"


def _tr(q: _Sql) -> tuple[list[_Column], str]:
    u = q.u
    month = DAYS_PER_MONTH
    sizes = f"""case when nodal then 15 + 25 * {u("size", "i", "j")}
            else 10 + 60 * pow({u("size", "i", "j")}, 1.5) end as d0j,
        -0.3 + 0.6 * {u("hetero", "i", "j")} as ej,
        {u("missing", "i", "l", "v")} as u_missing,
        case when l >= 5 then {u("nt_state", "i", "l", "v")} end as u_state,
        case when l < 8 then null
            when new_kind = 'M' and nodal then 15 + 15 * {u("new_size", "i", "j")}
            when new_kind = 'M' then 10 + 25 * {u("new_size", "i", "j")}
            when nodal then 5 + 9.9 * {u("new_size", "i", "j")}
            else 3 + 6.9 * {u("new_size", "i", "j")} end as s0j"""
    # Size (mm) before rounding: targets grow linearly at the subject's rate
    # (nodal ones do not shrink below 6 mm), new lesions from when they appear.
    raw_mm = f"""case
        when lesion_class = 'TARGET' and v = 0 then d0j * (1 + r_pre * (1 + ej) * t / {month})
        when lesion_class = 'TARGET' then least(400, greatest(
            case when nodal then least(d0j, 6) else 0 end,
            d0j * (1 + r_post * (1 + ej) * t / {month})))
        when new_kind is not null then least(400, s0j * (1
            + case when grp in ('HPD', 'PROG') then 0.25 else 0.1 end * (e - e_app)))
        end as raw_mm"""
    nt_state = f"""case
        when v <= 1 then 'PRESENT'
        when pseudo and e = 1 then 'UNEQUIVOCAL'
        when grp = 'RESP' and e >= 2 + cast(floor({u("nt_absent", "i", "j")} * 8) as INTEGER)
            then 'ABSENT'
        when grp in ('HPD', 'PROG') and u_state < 0.05 then 'UNEQUIVOCAL PROGRESSION'
        when grp in ('HPD', 'PROG') and u_state < 0.25 then 'UNEQUIVOCAL'
        when u_state < 0.03 then 'UNEQUIVOCAL'
        else 'PRESENT' end"""
    new_state = f"""case
        when e = e_app then {
        _case(u("new_state", "i", "j"), [("PRESENT", 70), ("EQUIVOCAL", 15), ("UNEQUIVOCAL", 15)])
    }
        when u_state < 0.8 then 'PRESENT'
        else 'UNEQUIVOCAL' end"""
    noise = u("reader_noise", "i", "r", "l", "v")
    results = f"""case when lesion_class = 'NON-TARGET' or new_kind = 'T' then 'TUMSTATE'
            when nodal then 'LPERP' else 'LDIAM' end as test,
        case when lesion_class = 'NON-TARGET' then {nt_state}
            when new_kind = 'T' then {new_state} end as state,
        -- the designed incomplete measurement, and gaps after the first evaluation
        (status = 'IM' and v = im_v and l = im_j and not im_omit)
            or (v >= 3 and lesion_class = 'TARGET' and u_missing < 0.015)
            or (v >= 3 and lesion_class = 'NON-TARGET' and u_missing < 0.02) as not_done,
        (status = 'IM' and v = im_v and l = im_j and im_omit)
            or (v >= 3 and lesion_class = 'TARGET' and u_missing >= 0.015
                and u_missing < 0.025) as omitted,
        cast(case when r = 0 then raw_mm else raw_mm * (0.94 + 0.12 * {noise}) end
            as DECIMAL(5,1)) as mm"""
    columns = [
        ("STUDYID", "studyid", "VARCHAR"),
        ("DOMAIN", "'TR'", "VARCHAR"),
        ("USUBJID", "usubjid", "VARCHAR"),
        ("TRSEQ", "r * 500 + v * 20 + l + 1", "INTEGER"),
        ("TRLNKID", "lesion_id", "VARCHAR"),
        ("TRTESTCD", "test", "VARCHAR"),
        (
            "TRTEST",
            "case test when 'LDIAM' then 'Longest Diameter' "
            "when 'LPERP' then 'Longest Perpendicular' else 'Tumor State' end",
            "VARCHAR",
        ),
        (
            "TRORRES",
            "case when not_done then null when test = 'TUMSTATE' then state "
            "when unit_style > 0 then cast(cast(mm / 10 as DECIMAL(6,2)) as VARCHAR) "
            "else mm_text end",
            "VARCHAR",
        ),
        (
            "TRORRESU",
            "case when not_done or test = 'TUMSTATE' then null "
            "when unit_style > 0 then 'cm' else 'mm' end",
            "VARCHAR",
        ),
        (
            "TRSTRESC",
            "case when not_done then null when test = 'TUMSTATE' then state "
            "when unit_style = 2 then null else mm_text end",
            "VARCHAR",
        ),
        (
            "TRSTRESN",
            "case when not_done or test = 'TUMSTATE' or unit_style = 2 then null else mm end",
            "DECIMAL(5,1)",
        ),
        (
            "TRSTRESU",
            "case when not_done or test = 'TUMSTATE' or unit_style = 2 then null else 'mm' end",
            "VARCHAR",
        ),
        ("TRSTAT", "case when not_done then 'NOT DONE' end", "VARCHAR"),
        (
            "TREVAL",
            "case when r = 0 then 'INVESTIGATOR' else 'INDEPENDENT ASSESSOR' end",
            "VARCHAR",
        ),
        ("TREVALID", "case when r > 0 then 'RADIOLOGIST ' || cast(r as VARCHAR) end", "VARCHAR"),
        ("TRACPTFL", "case when r > 0 and r = accepted then 'Y' end", "VARCHAR"),
        ("VISITNUM", "v + 1", "INTEGER"),
        ("VISIT", "visit", "VARCHAR"),
        ("TRDTC", "dtc", "VARCHAR"),
    ]
    # Readers, then the subject's scans, then the lesions seen at each scan.
    scans = _levels(
        "select *, unnest(range(nreaders)) as r from subjects",
        "unnest(range(case when has_pre then 0 else 1 end, 2 + n_eval)) as v",
        *_visit_levels(q),
    )
    lesions = _levels(f"select *, unnest({_LESION_SLOTS}) as l from ({scans})", *_lesion_levels(q))
    measured = _levels(
        f"select * from ({_levels(lesions, sizes)}) where l < 8 or e >= e_app",
        raw_mm,
        results,
        "cast(mm as VARCHAR) as mm_text",
    )
    return columns, f"from ({measured})\nwhere not omitted"


_DOMAIN_SQL = {"dm": _dm, "ex": _ex, "tu": _tu, "tr": _tr, "ds": _ds, "qs": _qs, "sc": _sc}


def _select(columns: list[_Column], source: str, file_format: FileFormat) -> str:
    if file_format == "parquet":
        items = [f"cast({expr} as {kind}) as {name}" for name, expr, kind in columns]
        return "select " + ",\n    ".join(items) + "\n" + source
    # One text column: the row's fields joined by commas and a newline (no
    # value needs quoting: `_sql_text` refuses constants with a comma or quote).
    fields = [f"coalesce(cast(cast({expr} as {kind}) as VARCHAR), '')" for _, expr, kind in columns]
    return "select concat_ws(',', " + ",\n    ".join(fields) + ") || chr(10) as line\n" + source


def _header(columns: list[_Column]) -> str:
    return ",".join(name for name, _, _ in columns) + "\n"


# ---------------------------------------------------------------------------
# Generation


@dataclass
class _ChunkResult:
    tables: dict[str, pa.Table]
    designed: dict[str, int]


def _parse_memory(limit: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B)?\s*", limit, flags=re.IGNORECASE)
    if not match:
        raise ValueError(f"memory limit {limit!r}: expected e.g. '2GB'")
    scale = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    unit = (match.group(2) or "").upper().replace("I", "").replace("B", "") or ""
    return int(float(match.group(1)) * scale[unit])


def _designed_sql() -> str:
    return """
select
    count(*) filter (where not screen_failure) as treated,
    count(*) filter (where screen_failure) as screen_failures,
    count(*) filter (where status = 'NB') as no_baseline_scan,
    count(*) filter (where status = 'NF') as no_first_evaluation,
    count(*) filter (where status = 'NP') as no_pre_baseline_scan,
    count(*) filter (where status = 'IM') as incomplete_measurements,
    count(*) filter (where status = 'EV') as evaluable,
    count(*) filter (where status = 'EV' and grp = 'HPD') as hpd,
    count(*) filter (where nreaders > 1) as independent_read,
    count(*) filter (where has_scan) as with_scans
from subjects
"""


def _run_chunk(
    low: int,
    high: int,
    q: _Sql,
    shares: Shares,
    independent: float,
    screen_failure: float,
    file_format: FileFormat,
    memory_bytes: int,
) -> _ChunkResult:
    """Every domain of subjects `low`..`high`-1, as Arrow tables in row order.

    The connection is single-threaded: its pipelines over `range()` and
    `unnest()` keep the rows in the order they are generated.
    """
    tables: dict[str, pa.Table] = {}
    config = {"threads": 1, "memory_limit": f"{memory_bytes >> 20}MB"}
    with duckdb.connect(config=config) as con:
        con.execute("set preserve_insertion_order = true")
        con.execute(
            "create temp table subjects as "
            + _subjects_sql(q, low, high, shares, independent, screen_failure)
        )
        row = con.execute(_designed_sql())
        names = [d[0] for d in row.description or []]
        values = row.fetchall()[0]
        designed = {name: int(value) for name, value in zip(names, values, strict=True)}
        for domain in DOMAINS:
            columns, source = _DOMAIN_SQL[domain](q)
            tables[domain] = con.sql(_select(columns, source, file_format)).to_arrow_table()
    return _ChunkResult(tables, designed)


def _write_lines(sink: BinaryIO, table: pa.Table) -> None:
    """Write a one-column table of newline-terminated lines as they are in memory."""
    for array in table.column(0).chunks:
        chunk = array
        if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
            chunk = chunk.cast(pa.large_string())
        if len(chunk) == 0:
            continue
        offsets_buffer, data_buffer = chunk.buffers()[1:3]
        width = 8 if pa.types.is_large_string(chunk.type) else 4
        offsets = memoryview(offsets_buffer).cast("q" if width == 8 else "i")
        start = offsets[chunk.offset]
        end = offsets[chunk.offset + len(chunk)]
        if data_buffer is not None and end > start:
            sink.write(memoryview(data_buffer)[start:end])


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def generate(
    subjects: int,
    out_dir: Path,
    seed: int = 1,
    file_format: FileFormat = "csv",
    studies: int = 6,
    *,
    shares: Shares | None = None,
    independent_share: float = 0.10,
    screen_failure_share: float = 0.02,
    threads: int | None = None,
    memory_limit: str = "2GB",
    chunk_size: int = 25_000,
) -> SynthSummary:
    """Write a synthetic cohort of `subjects` subjects as SDTM exports into `out_dir`.

    Files are `<domain>.csv` or `<domain>.parquet` for dm, ex, tu, tr, ds, qs,
    sc; existing export files of those domains in `out_dir` (either format)
    are replaced. `threads` workers (default: the CPUs available) share
    `memory_limit`; at most `threads` + 1 chunks are in memory at once.
    """
    started = time.monotonic()
    if subjects < 1:
        raise ValueError("subjects must be at least 1")
    if studies < 1:
        raise ValueError("studies must be at least 1")
    if file_format not in ("csv", "parquet"):
        raise ValueError(f"file_format must be 'csv' or 'parquet', not {file_format!r}")
    if not 0.0 <= independent_share <= 1.0 or not 0.0 <= screen_failure_share < 1.0:
        raise ValueError("independent_share and screen_failure_share must lie in [0, 1)")
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    shares = shares or Shares()
    shares.validate()
    workers = max(1, threads or _cpu_count())
    memory_bytes = max(_parse_memory(memory_limit) // workers, 64 << 20)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    q = _Sql(int(seed), subjects, studies)
    chunks = iter(range(0, subjects, chunk_size))
    staging = Path(tempfile.mkdtemp(prefix=".synth-", dir=out_dir))
    staged = {domain: staging / f"{domain}.{file_format}" for domain in DOMAINS}
    rows = dict.fromkeys(DOMAINS, 0)
    designed: dict[str, int] = {}
    try:
        with contextlib.ExitStack() as stack:
            csv_sinks: dict[str, BinaryIO] = {}
            parquet_sinks: dict[str, pq.ParquetWriter] = {}
            if file_format == "csv":
                for domain in DOMAINS:
                    sink = stack.enter_context(staged[domain].open("wb"))
                    sink.write(_header(_DOMAIN_SQL[domain](q)[0]).encode("utf-8"))
                    csv_sinks[domain] = sink
            pool = stack.enter_context(ThreadPoolExecutor(max_workers=workers))
            pending: deque[Future[_ChunkResult]] = deque()

            def submit_next() -> None:
                low = next(chunks, None)
                if low is not None:
                    pending.append(
                        pool.submit(
                            _run_chunk,
                            low,
                            min(low + chunk_size, subjects),
                            q,
                            shares,
                            independent_share,
                            screen_failure_share,
                            file_format,
                            memory_bytes,
                        )
                    )

            for _ in range(workers + 1):
                submit_next()
            # Chunks are written in order, as they come; the window bounds memory.
            while pending:
                chunk = pending.popleft().result()
                submit_next()
                for key, value in chunk.designed.items():
                    designed[key] = designed.get(key, 0) + value
                for domain in DOMAINS:
                    table = chunk.tables[domain]
                    rows[domain] += table.num_rows
                    if file_format == "csv":
                        _write_lines(csv_sinks[domain], table)
                    else:
                        if domain not in parquet_sinks:
                            parquet_sinks[domain] = stack.enter_context(
                                pq.ParquetWriter(staged[domain], table.schema, compression="zstd")
                            )
                        parquet_sinks[domain].write_table(table)
                del chunk
        files: dict[str, Path] = {}
        for domain in DOMAINS:
            for stale in out_dir.iterdir():
                if stale.is_file() and stale.name.lower() in (f"{domain}.csv", f"{domain}.parquet"):
                    stale.unlink()
            files[domain] = out_dir / f"{domain}.{file_format}"
            os.replace(staged[domain], files[domain])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    intended = {
        **shares.by_status(),
        "hpd_among_evaluable": shares.hpd_among_evaluable,
        "screen_failure": screen_failure_share,
        "independent_read": independent_share,
    }
    return SynthSummary(
        subjects=subjects,
        seed=int(seed),
        file_format=file_format,
        studies=studies,
        out_dir=out_dir,
        files=files,
        rows=rows,
        bytes={domain: files[domain].stat().st_size for domain in DOMAINS},
        seconds=time.monotonic() - started,
        intended=intended,
        designed=designed,
    )


# ---------------------------------------------------------------------------
# Command line: `hpd synth --subjects 1000000 --out build/synth --format csv`


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The options of `hpd synth` (added to `parser` when given)."""
    parser = parser or argparse.ArgumentParser(
        prog="hpd synth", description="write a synthetic SDTM cohort (dm, ex, tu, tr, ds, qs, sc)"
    )
    parser.add_argument("--subjects", type=int, required=True, help="number of subjects")
    parser.add_argument(
        "--out", type=Path, required=True, dest="out_dir", help="folder to write the exports into"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed (default 1)")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv", dest="file_format")
    parser.add_argument("--studies", type=int, default=6, help="number of studies (default 6)")
    parser.add_argument("--threads", type=int, default=None, help="workers (default: CPUs)")
    parser.add_argument("--memory-limit", default="2GB", help="DuckDB memory limit (2GB)")
    parser.add_argument(
        "--independent-share", type=float, default=0.10, help="subjects with an independent read"
    )
    parser.add_argument(
        "--screen-failure-share", type=float, default=0.02, help="subjects never treated"
    )
    return parser


def run(args: argparse.Namespace) -> SynthSummary:
    return generate(
        args.subjects,
        args.out_dir,
        seed=args.seed,
        file_format=args.file_format,
        studies=args.studies,
        independent_share=args.independent_share,
        screen_failure_share=args.screen_failure_share,
        threads=args.threads,
        memory_limit=args.memory_limit,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = run(args)
    except ValueError as error:
        print(f"hpd synth: error: {error}", file=sys.stderr)
        return 2
    print(summary.describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

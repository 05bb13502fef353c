"""End-to-end test: a refresh from hand-made "real-world" SDTM exports.

The folder tests/data/realworld holds a small export of 7 subjects in 2 studies
that exercises the conventions of SPEC §1 a correct implementation must handle:

* dm.csv has lower-case column names, tu.csv and qs.csv mixed-case ones; every
  file carries columns the SPEC does not name (DOMAIN, --SEQ, TRGRPID, TRMETHOD,
  TRREASND, EPOCH, SUBJID, ...); tr.csv has its columns in a different order;
  ex.csv has no EXENDTC column at all (optional) and dm.csv no DTHFL.
* Subject NCT01000001-001 is read by the investigator and by two independent
  radiologists (R1 accepted, R2 not); the default run must use the investigator
  only, `--reader independent` RADIOLOGIST 1 only.

Every expected value below was worked out by hand from /work/shared/SPEC.md; the
arithmetic is in the comments.  A month is 30.4375 days (SPEC §2), so
"x d" below means x calendar days and "x d / 30.4375" months.  Ferté's TGR is
100 * (exp(3 * ln(S_b / S_a) / months) - 1) on the target sum.

Subjects and what each one is for (first dose = FD):

NCT01000001-001 (A1) evaluable, HPD.  FD 2017-01-10 from EX (EXSTDTC
    "2017-01-10T09:00", time dropped).  Targets T01 (LIVER, LDIAM) and T02
    (LYMPH NODE: LPERP counts, its LDIAM rows do not); T01 also has a DIAMETER
    row (ignored); the pre-baseline T01 is "2.0 cm" (= 20 mm).  Baseline rows
    span 2017-01-05T10:30 and 2017-01-06 (date = 2017-01-05).  First-evaluation
    rows are dated 2017-03-07 and "2017-03" (a full date wins: 2017-03-07, not
    imputed).  A measurable new lesion of exactly 10 mm.  DS: an INFORMED
    CONSENT OBTAINED protocol milestone after FD (re-consent, must not count)
    and a DISPOSITION EVENT (counts).  Independent reads R1 (accepted) / R2.
NCT01000001-002 (A2) evaluable, not HPD (TGKR 0.8).  Three targets (one nodal);
    some rows have blank TREVAL (investigator).  At baseline T01/LDIAM is
    duplicated: the later-dated row (first in the file) is kept, the other
    rejected as `duplicate`; T02 has TRSTRESN blank and TRORRES/TRORRESU
    "18"/"MM" (fallback, units case-insensitive).  At the first evaluation T03
    is TRSTRESC ABSENT (0 mm, complete), the non-target is ABSENT, a new lesion
    measured 8 mm (present, not measurable: RECIST PD, irRECIST SD) and an
    EQUIVOCAL new lesion (not present).  The follow-up is dated "2017-05" on
    every row (imputed 2017-05-01, date_imputed) and T03 is 0 there.
NCT01000001-003 (A3) no_first_evaluation.  FD 2017-04-03 from EX although
    DM.RFXSTDTC says 2017-04-05 (EX wins).  Blank TREVAL/TUEVAL; TU class from
    TUORRES "target" (TUSTRESC blank).  DS: a RANDOMIZED row with blank DSCAT
    on FD (milestone, must not count) then ADVERSE EVENT with blank DSCAT.
CTR20180001-001 (B1) evaluable, TGK_pre = 0 (flagged, not HPD),
    pseudoprogression.  No EX rows: FD from DM.RFXSTDTC 2018-03-01.  Blank
    units (= mm), a target at 0 mm, non-target UNEQUIVOCAL at the first
    evaluation (PD both ways), a nodal new lesion with short axis 15 mm
    (measurable; its LDIAM row ignored) that stays in the burden at 10 mm, and
    a nodal new lesion with short axis 12 mm (present, not measurable although
    its LDIAM is 16).  TTF from DM.DTHDTC (no DS discontinuation).
CTR20180001-002 (B2) no_pre_baseline_scan.  The earlier scan is only 10 days
    before the baseline (< 14: role `other`).  EX: first row in the file is a
    later cycle; a second drug.  DS: only a milestone and a COMPLETED
    disposition: treatment ongoing (TTF null).
CTR20180001-003 (B3) incomplete_measurements: TRSTAT NOT DONE for T02 at the
    first evaluation.  At the follow-up T01 is reported in "in" (row rejected
    as `invalid_unit`), so the follow-up is incomplete too.
CTR20180001-004 (B4) no_baseline_scan: its only pre-dose scan is 61 days before
    FD (> 42).  VISITNUM blank: assessments grouped by VISIT.

Points the SPEC leaves open are not asserted (see the comments): the value of
`new_lesion_sum_mm` when no new lesion counts (0 or null are both accepted),
pseudoprogression when there is no second evaluation, the scale of the pct_*
columns, `s_first_evaluation_mm` of an incomplete first evaluation, responses
of a subject without a baseline, the base of `interval_index`, `visitnum`'s
type, and rejected rows in the `--reader independent` run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[1]
EXPORTS = Path(__file__).resolve().parent / "data" / "realworld"
M = 30.4375  # days per month (SPEC §2)

A1, A2, A3 = "NCT01000001-001", "NCT01000001-002", "NCT01000001-003"
B1, B2, B3, B4 = "CTR20180001-001", "CTR20180001-002", "CTR20180001-003", "CTR20180001-004"
STUDY = {
    A1: "NCT01000001",
    A2: "NCT01000001",
    A3: "NCT01000001",
    B1: "CTR20180001",
    B2: "CTR20180001",
    B3: "CTR20180001",
    B4: "CTR20180001",
}
SUBJECTS = [A1, A2, A3, B1, B2, B3, B4]

# Sentinel: the SPEC does not say whether "no counted new lesion" is 0 or null.
ZERO_OR_NULL = object()


# --------------------------------------------------------------------------- helpers
def _run_pipeline(workdir: Path, reader: str | None = None) -> Path:
    warehouse = workdir / "wh.duckdb"
    cmd = [
        sys.executable,
        "-m",
        "hpd",
        "run",
        "--exports",
        str(EXPORTS),
        "--warehouse",
        str(warehouse),
        "--reports",
        str(workdir / "reports"),
    ]
    if reader:
        cmd += ["--reader", reader]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(REPO), timeout=1800)
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} exited {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout[-5000:]}\n--- stderr ---\n{proc.stderr[-10000:]}"
    )
    assert warehouse.exists(), f"no warehouse at {warehouse}"
    return warehouse


def _rows(con, sql: str, *params) -> list[dict]:
    cur = con.execute(sql, list(params))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _norm(value):
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _check(actual: dict, expected: dict, ctx: str) -> None:
    """Compare the keys of `expected` only; floats with rel=1e-9."""
    for key, want in expected.items():
        assert key in actual, f"{ctx}: column {key!r} missing (has {sorted(actual)})"
        got = _norm(actual[key])
        where = f"{ctx}: {key}"
        if want is ZERO_OR_NULL:
            assert got is None or float(got) == pytest.approx(0.0, abs=1e-12), (
                f"{where} = {got!r}, expected 0 or null"
            )
        elif want is None:
            assert got is None, f"{where} = {got!r}, expected null"
        elif isinstance(want, bool):
            assert got is not None and bool(got) is want and got in (True, False), (
                f"{where} = {got!r}, expected {want}"
            )
        elif isinstance(want, (int, float)):
            assert got is not None and float(got) == pytest.approx(want, rel=1e-9), (
                f"{where} = {got!r}, expected {want!r}"
            )
        elif isinstance(want, date):
            if isinstance(got, str):
                got = date.fromisoformat(got[:10])
            assert got == want, f"{where} = {got!r}, expected {want}"
        else:
            assert got == want, f"{where} = {got!r}, expected {want!r}"


def _assessments(con, usubjid: str) -> list[dict]:
    rows = _rows(con, "select * from analytics.tumor_assessments where usubjid = ?", usubjid)
    return sorted(rows, key=lambda r: _norm(r["assessment_date"]))


def _kinetics(con, usubjid: str) -> dict:
    rows = _rows(con, "select * from analytics.tumor_kinetics where usubjid = ?", usubjid)
    assert len(rows) == 1, f"tumor_kinetics has {len(rows)} rows for {usubjid}"
    return rows[0]


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    """Default refresh: investigator reads."""
    path = _run_pipeline(tmp_path_factory.mktemp("realworld_investigator"))
    con = duckdb.connect(str(path), read_only=True)
    yield con
    con.close()


@pytest.fixture(scope="module")
def wh_independent(tmp_path_factory):
    """Refresh with the accepted independent read (RADIOLOGIST 1)."""
    path = _run_pipeline(tmp_path_factory.mktemp("realworld_independent"), reader="independent")
    con = duckdb.connect(str(path), read_only=True)
    yield con
    con.close()


# --------------------------------------------------------------------------- expected values
# analytics.tumor_assessments, investigator read, in date order per subject.
# Only the keys given are checked.  Responses are checked at post-baseline assessments.
ASSESSMENTS = {
    A1: [  # FD 2017-01-10
        dict(
            assessment_date=date(2016, 11, 10),
            study_day=-61,  # 2016-11-10 - 2017-01-10 = -61 d (before FD: no +1)
            role="pre_baseline",  # 56 d before the baseline (14 <= 56 <= 183)
            target_sum_mm=30,  # T01 2.0 cm * 10 = 20 + T02 LPERP 10 (LDIAM 18 ignored) = 30
            target_complete=True,
            new_lesion_sum_mm=ZERO_OR_NULL,
            irrecist_burden_mm=30,  # = target sum at pre-baseline
            date_imputed=False,
        ),
        dict(
            assessment_date=date(
                2017, 1, 5
            ),  # rows 2017-01-05T10:30 (time dropped) and 2017-01-06: earliest
            study_day=-5,  # 2017-01-05 - 2017-01-10 = -5
            role="baseline",  # latest on/before FD, 5 <= 42 d before it
            target_sum_mm=40,  # T01 LDIAM 26 (DIAMETER 31 ignored) + T02 LPERP 14 (LDIAM 21 ignored)
            target_complete=True,
            new_lesion_sum_mm=ZERO_OR_NULL,
            irrecist_burden_mm=40,
            date_imputed=False,
        ),
        dict(
            assessment_date=date(
                2017, 3, 7
            ),  # rows 2017-03-07 and "2017-03" (-> 03-01, imputed): full date wins
            study_day=57,  # 2017-03-07 - 2017-01-10 = 56 d, +1 on/after FD = 57
            role="first_evaluation",
            target_sum_mm=70,  # T01 50 + T02 LPERP 20 (LDIAM 27 ignored)
            target_complete=True,
            new_lesion_sum_mm=10,  # NEW01 LDIAM 10 mm >= 10: measurable, counted
            irrecist_burden_mm=80,  # 70 + 10
            nadir_mm=40,  # only the baseline before it
            response_irrecist="PD",  # 80 >= 1.2 * 40 = 48 and 80 - 40 = 40 >= 5
            response_recist="PD",  # target sum 70 >= 1.2 * 40 and 30 >= 5 (and a new lesion is present)
            date_imputed=False,
        ),
    ],
    A2: [  # FD 2017-02-01
        dict(
            assessment_date=date(2016, 11, 28),
            study_day=-65,  # 2016-11-28 - 2017-02-01 = -65
            role="pre_baseline",  # 60 d before the baseline; 65 d before FD (outside the 42-d baseline window)
            target_sum_mm=40,  # T01 20 + T02 LPERP 15 (blank TREVAL = investigator) + T03 5
            target_complete=True,
            new_lesion_sum_mm=ZERO_OR_NULL,
            irrecist_burden_mm=40,
            date_imputed=False,
        ),
        dict(
            assessment_date=date(2017, 1, 27),  # rows on 2017-01-27 and 2017-01-29: earliest
            study_day=-5,  # 2017-01-27 - 2017-02-01 = -5
            role="baseline",
            # T01: duplicate LDIAM rows 22 (2017-01-29, kept: latest-dated) and 21 (2017-01-27, rejected)
            # T02: TRSTRESN blank -> TRORRES 18 TRORRESU "MM" = 18 mm; T03 10
            target_sum_mm=50,  # 22 + 18 + 10
            target_complete=True,
            new_lesion_sum_mm=ZERO_OR_NULL,
            irrecist_burden_mm=50,
            date_imputed=False,
        ),
        dict(
            assessment_date=date(2017, 3, 28),
            study_day=56,  # 2017-03-28 - 2017-02-01 = 55 d, +1 = 56
            role="first_evaluation",
            target_sum_mm=58,  # T01 40 + T02 18 + T03 TRSTRESC ABSENT = 0 mm
            target_complete=True,  # 0 counts as a measurement
            new_lesion_sum_mm=ZERO_OR_NULL,  # NEW01 8 mm < 10: not measurable; NEW02 EQUIVOCAL
            irrecist_burden_mm=58,
            nadir_mm=50,
            response_irrecist="SD",  # 58 < 1.2 * 50 = 60: not PD; T01 > 0: not CR; 58 > 0.7 * 50 = 35: not PR
            response_recist="PD",  # NEW01 measured 8 mm > 0 is present -> RECIST PD
            date_imputed=False,
        ),
        dict(
            assessment_date=date(2017, 5, 1),  # every row dated "2017-05": imputed to the 1st
            study_day=90,  # 2017-05-01 - 2017-02-01 = 89 d, +1 = 90
            role="follow_up",
            target_sum_mm=60,  # T01 42 + T02 18 + T03 0 (TRSTRESN 0)
            target_complete=True,
            new_lesion_sum_mm=ZERO_OR_NULL,  # NEW01 still 8 mm
            irrecist_burden_mm=60,
            nadir_mm=50,  # min(baseline 50, first evaluation 58)
            response_irrecist="PD",  # 60 >= 1.2 * 50 = 60 (equal counts, rule 9) and 60 - 50 = 10 >= 5
            response_recist="PD",  # same on the target sum, and NEW01 present
            date_imputed=True,
        ),
    ],
    A3: [  # FD 2017-04-03 (EX), not DM.RFXSTDTC 2017-04-05
        dict(
            assessment_date=date(2017, 2, 1),
            study_day=-61,  # 2017-02-01 - 2017-04-03 = -61
            role="pre_baseline",  # 57 d before the baseline
            target_sum_mm=40,
            target_complete=True,
            new_lesion_sum_mm=ZERO_OR_NULL,
            irrecist_burden_mm=40,
            date_imputed=False,
        ),
        dict(
            assessment_date=date(2017, 3, 30),
            study_day=-4,  # 2017-03-30 - 2017-04-03 = -4
            role="baseline",
            target_sum_mm=50,
            target_complete=True,
            new_lesion_sum_mm=ZERO_OR_NULL,
            irrecist_burden_mm=50,
            date_imputed=False,
        ),
    ],
    B1: [  # FD 2018-03-01 from DM.RFXSTDTC (no EX rows)
        dict(
            assessment_date=date(2017, 12, 27),
            study_day=-64,  # 2017-12-27 - 2018-03-01 = -64
            role="pre_baseline",  # 61 d before the baseline
            target_sum_mm=50,  # T01 30 + T02 20, blank units = mm
            target_complete=True,
            new_lesion_sum_mm=ZERO_OR_NULL,
            irrecist_burden_mm=50,
            date_imputed=False,
        ),
        dict(
            assessment_date=date(2018, 2, 26),
            study_day=-3,  # 2018-02-26 - 2018-03-01 = -3
            role="baseline",
            target_sum_mm=50,  # 30 + 20
            target_complete=True,
            new_lesion_sum_mm=ZERO_OR_NULL,
            irrecist_burden_mm=50,
            date_imputed=False,
        ),
        dict(
            assessment_date=date(2018, 4, 27),
            study_day=58,  # 2018-04-27 - 2018-03-01 = 57 d, +1 = 58
            role="first_evaluation",
            target_sum_mm=32,  # T01 32 + T02 0 (result 0 = absent, 0 mm)
            target_complete=True,
            new_lesion_sum_mm=15,  # NEW01 nodal, LPERP 15 >= 15 (LDIAM 22 ignored); NEW02 LPERP 12 < 15
            irrecist_burden_mm=47,  # 32 + 15
            nadir_mm=50,
            response_irrecist="PD",  # 47 < 60 but the non-target NT01 is UNEQUIVOCAL
            response_recist="PD",  # UNEQUIVOCAL (and new lesions present)
            date_imputed=False,
        ),
        dict(
            assessment_date=date(2018, 6, 26),
            study_day=118,  # 2018-06-26 - 2018-03-01 = 117 d, +1 = 118
            role="follow_up",
            target_sum_mm=30,  # T01 30 + T02 0
            target_complete=True,
            new_lesion_sum_mm=10,  # NEW01 counted since it was measurable; measured 10 now (rule 8: never leaves)
            irrecist_burden_mm=40,  # 30 + 10
            nadir_mm=47,  # min(baseline 50, first evaluation 47)
            response_irrecist="SD",  # 40 < 1.2 * 47; NT01 PRESENT: no CR; 40 > 0.7 * 50 = 35: not PR
            response_recist="PD",  # new lesions NEW01 (10 mm) / NEW02 (12 mm) present
            date_imputed=False,
        ),
    ],
    B2: [  # FD 2018-03-07 (earliest EXSTDTC; the file's first EX row is 2018-04-04)
        dict(
            assessment_date=date(2018, 2, 20),
            study_day=-15,  # 2018-02-20 - 2018-03-07 = -15
            role="other",  # not the latest pre-dose scan; only 10 d before the baseline (< 14)
            target_sum_mm=40,
            target_complete=True,
            irrecist_burden_mm=40,
            date_imputed=False,
        ),
        dict(
            assessment_date=date(2018, 3, 2),
            study_day=-5,  # 2018-03-02 - 2018-03-07 = -5
            role="baseline",
            target_sum_mm=40,
            target_complete=True,
            new_lesion_sum_mm=ZERO_OR_NULL,
            irrecist_burden_mm=40,
            date_imputed=False,
        ),
        dict(
            assessment_date=date(2018, 5, 2),
            study_day=57,  # 2018-05-02 - 2018-03-07 = 56 d, +1 = 57
            role="first_evaluation",
            target_sum_mm=60,
            target_complete=True,
            new_lesion_sum_mm=ZERO_OR_NULL,
            irrecist_burden_mm=60,
            nadir_mm=40,
            response_irrecist="PD",  # 60 >= 1.2 * 40 = 48 and 20 >= 5
            response_recist="PD",
            date_imputed=False,
        ),
    ],
    B3: [  # FD 2018-06-01
        dict(
            assessment_date=date(2018, 4, 5),
            study_day=-57,  # 2018-04-05 - 2018-06-01 = -57
            role="pre_baseline",  # 54 d before the baseline
            target_sum_mm=36,  # T01 20 + T02 16
            target_complete=True,
            new_lesion_sum_mm=ZERO_OR_NULL,
            irrecist_burden_mm=36,
            date_imputed=False,
        ),
        dict(
            assessment_date=date(2018, 5, 29),
            study_day=-3,  # 2018-05-29 - 2018-06-01 = -3
            role="baseline",
            target_sum_mm=50,  # 25 + 25
            target_complete=True,
            new_lesion_sum_mm=ZERO_OR_NULL,
            irrecist_burden_mm=50,
            date_imputed=False,
        ),
        dict(
            assessment_date=date(2018, 7, 27),
            study_day=57,  # 2018-07-27 - 2018-06-01 = 56 d, +1 = 57
            role="first_evaluation",  # roles ignore completeness (rule 1)
            target_sum_mm=30,  # only T01 30 available; T02 TRSTAT NOT DONE = not assessed
            target_complete=False,
            new_lesion_sum_mm=ZERO_OR_NULL,
            irrecist_burden_mm=30,  # burden "as measured"
            nadir_mm=50,  # baseline only
            response_irrecist="NE",
            response_recist="NE",  # incomplete assessment
            date_imputed=False,
        ),
        dict(
            assessment_date=date(2018, 9, 25),
            study_day=117,  # 2018-09-25 - 2018-06-01 = 116 d, +1 = 117
            role="follow_up",
            target_sum_mm=30,  # T02 30; T01's row (unit "in") is rejected -> T01 not measured
            target_complete=False,
            new_lesion_sum_mm=ZERO_OR_NULL,
            irrecist_burden_mm=30,
            nadir_mm=50,  # baseline; the first evaluation is incomplete, so it does not count
            response_irrecist="NE",
            response_recist="NE",
            date_imputed=False,
        ),
    ],
    B4: [  # FD 2018-05-15; VISITNUM blank: grouped by VISIT
        dict(
            assessment_date=date(2018, 3, 15),
            study_day=-61,  # 2018-03-15 - 2018-05-15 = -61
            visit="SCREENING",
            role="other",  # 61 > 42 d before FD: no baseline; hence no pre-baseline either
            target_sum_mm=30,
            target_complete=True,
            irrecist_burden_mm=30,
            date_imputed=False,
        ),
        dict(
            assessment_date=date(2018, 7, 16),
            study_day=63,  # 2018-07-16 - 2018-05-15 = 62 d, +1 = 63
            visit="WEEK 9",
            role="first_evaluation",  # earliest assessment after FD (responses not asserted: no baseline)
            target_sum_mm=45,
            target_complete=True,
            irrecist_burden_mm=45,
            date_imputed=False,
        ),
    ],
}

# analytics.tumor_kinetics, investigator read.
KINETICS = {
    A1: dict(
        evaluability="evaluable",
        first_dose_date=date(2017, 1, 10),
        pre_baseline_date=date(2016, 11, 10),
        baseline_date=date(2017, 1, 5),
        first_evaluation_date=date(2017, 3, 7),
        s_pre_mm=30,
        s_baseline_mm=40,
        s_first_evaluation_mm=80,  # irRECIST burdens
        # Δt_pre = 2016-11-10 -> 2017-01-05 = 56 d = 1.839836 months
        tgk_pre=5.435267857142858,  # (40 - 30) mm / (56 d / 30.4375) = 5.4353 mm/month
        # Δt_post = 2017-01-05 -> 2017-03-07 = 61 d = 2.004107 months
        tgk_post=19.959016393442624,  # (80 - 40) mm / (61 d / 30.4375) = 19.9590 mm/month
        tgkr=3.6721311475409837,  # 19.9590 / 5.4353 = (40/61) / (10/56) = 3.6721
        tgk_pre_non_positive=False,
        tgr_pre=59.85368409329679,  # 100 * (exp(3 * ln(40/30) / 1.839836) - 1) = 59.8537 %/month
        tgr_post=131.1053662309218,  # 100 * (exp(3 * ln(70/40) / 2.004107) - 1) = 131.1054 (target sum 70)
        tgr_ratio=2.1904310188586154,  # 131.1054 / 59.8537
        delta_tgr=71.251682137625,  # 131.1054 - 59.8537
        pp_pre=1 / 3,  # (40 - 30) / 30 = 0.3333
        pp_post=1.0,  # (80 - 40) / 40
        ttf_months=2.2669404517453797,  # 2017-01-10 -> DS PROGRESSIVE DISEASE 2017-03-20 = 69 d / 30.4375
        # (the 2017-02-15 INFORMED CONSENT OBTAINED row is a PROTOCOL MILESTONE: ignored)
        stop_reason="PROGRESSIVE DISEASE",
        response_first_evaluation_irrecist="PD",
        response_first_evaluation_recist="PD",
        # pseudoprogression: PD at the first evaluation, no second evaluation -> left open, not asserted
        hpd=True,  # TGK_pre 5.4353 > 0 and TGKR 3.6721 >= 2
    ),
    A2: dict(
        evaluability="evaluable",
        first_dose_date=date(2017, 2, 1),
        pre_baseline_date=date(2016, 11, 28),
        baseline_date=date(2017, 1, 27),
        first_evaluation_date=date(2017, 3, 28),
        s_pre_mm=40,
        s_baseline_mm=50,
        s_first_evaluation_mm=58,
        # Δt_pre = 2016-11-28 -> 2017-01-27 = 60 d; Δt_post = 2017-01-27 -> 2017-03-28 = 60 d (1.971253 months)
        tgk_pre=5.072916666666667,  # (50 - 40) / (60 / 30.4375) = 5.0729 mm/month
        tgk_post=4.058333333333334,  # (58 - 50) / (60 / 30.4375) = 4.0583 mm/month
        tgkr=0.8,  # 4.0583 / 5.0729 = 8 / 10
        tgk_pre_non_positive=False,
        tgr_pre=40.438093798932265,  # 100 * (exp(3 * ln(50/40) / 1.971253) - 1) = 40.4381
        tgr_post=25.34211030228526,  # 100 * (exp(3 * ln(58/50) / 1.971253) - 1) = 25.3421
        tgr_ratio=0.6266890429675595,  # 25.3421 / 40.4381
        delta_tgr=-15.095983496647005,  # 25.3421 - 40.4381
        pp_pre=0.25,  # (50 - 40) / 40
        pp_post=0.16,  # (58 - 50) / 50
        ttf_months=3.252566735112936,  # 2017-02-01 -> DS PROGRESSIVE DISEASE 2017-05-11 = 99 d / 30.4375
        stop_reason="PROGRESSIVE DISEASE",
        response_first_evaluation_irrecist="SD",
        response_first_evaluation_recist="PD",
        pseudoprogression=False,  # not PD (irRECIST) at the first evaluation
        hpd=False,  # TGK_pre > 0 but TGKR 0.8 < 2
    ),
    B1: dict(
        evaluability="evaluable",
        first_dose_date=date(2018, 3, 1),  # DM.RFXSTDTC, no EX rows
        pre_baseline_date=date(2017, 12, 27),
        baseline_date=date(2018, 2, 26),
        first_evaluation_date=date(2018, 4, 27),
        s_pre_mm=50,
        s_baseline_mm=50,
        s_first_evaluation_mm=47,
        # Δt_pre = 2017-12-27 -> 2018-02-26 = 61 d; Δt_post = 2018-02-26 -> 2018-04-27 = 60 d (1.971253 months)
        tgk_pre=0.0,  # (50 - 50) / (61 / 30.4375) = 0
        tgk_post=-1.521875,  # (47 - 50) / (60 / 30.4375) = -1.5219 mm/month
        tgkr=None,  # undefined: TGK_pre = 0
        tgk_pre_non_positive=True,
        tgr_pre=0.0,  # 100 * (exp(3 * ln(50/50) / 2.004107) - 1) = 0
        tgr_post=-49.297409616156585,  # 100 * (exp(3 * ln(32/50) / 1.971253) - 1) = -49.2974 (target sums)
        tgr_ratio=None,  # undefined: TGR_pre = 0
        delta_tgr=-49.297409616156585,  # -49.2974 - 0
        pp_pre=0.0,  # (50 - 50) / 50
        pp_post=-0.06,  # (47 - 50) / 50
        ttf_months=4.468172484599589,  # no DS discontinuation; death DM.DTHDTC 2018-07-15: 136 d / 30.4375
        stop_reason="DEATH",
        response_first_evaluation_irrecist="PD",
        response_first_evaluation_recist="PD",
        pseudoprogression=True,  # irRECIST PD at the first evaluation, SD at the second
        hpd=False,  # evaluable with TGK_pre <= 0: false, flagged
    ),
    B2: dict(
        evaluability="no_pre_baseline_scan",
        first_dose_date=date(2018, 3, 7),
        pre_baseline_date=None,
        baseline_date=date(2018, 3, 2),
        first_evaluation_date=date(2018, 5, 2),
        s_pre_mm=None,
        s_baseline_mm=40,
        s_first_evaluation_mm=60,
        tgk_pre=None,
        tgkr=None,
        tgr_pre=None,
        tgr_ratio=None,
        pp_pre=None,
        # Δt_post = 2018-03-02 -> 2018-05-02 = 61 d = 2.004107 months
        tgk_post=9.979508196721312,  # (60 - 40) / (61 / 30.4375) = 9.9795 mm/month
        tgr_post=83.48291216934338,  # 100 * (exp(3 * ln(60/40) / 2.004107) - 1) = 83.4829
        pp_post=0.5,  # (60 - 40) / 40
        ttf_months=None,  # only a milestone and a COMPLETED row in DS, alive: ongoing
        stop_reason=None,
        response_first_evaluation_irrecist="PD",
        response_first_evaluation_recist="PD",
        hpd=None,  # tgkr needs an evaluable subject
    ),
    B4: dict(
        evaluability="no_baseline_scan",
        first_dose_date=date(2018, 5, 15),
        pre_baseline_date=None,
        baseline_date=None,
        first_evaluation_date=date(2018, 7, 16),
        tgk_pre=None,
        tgk_post=None,
        tgkr=None,
        tgr_pre=None,
        tgr_post=None,
        pp_pre=None,
        pp_post=None,
        ttf_months=2.5626283367556466,  # 2018-05-15 -> DS WITHDRAWAL BY SUBJECT 2018-08-01 = 78 d / 30.4375
        stop_reason="WITHDRAWAL BY SUBJECT",
        hpd=None,
    ),
}

# Subjects with complete pre-baseline and baseline but not evaluable: the SPEC's
# table makes TGK_pre/TGR_pre/PP_pre undefined only "when a point is missing",
# so they are computed for them too (tested separately, see the report).
KINETICS_NOT_EVALUABLE = {
    A3: dict(
        evaluability="no_first_evaluation",
        first_dose_date=date(
            2017, 4, 3
        ),  # earliest EXSTDTC; DM.RFXSTDTC 2017-04-05 is only the fallback
        pre_baseline_date=date(2017, 2, 1),
        baseline_date=date(2017, 3, 30),
        first_evaluation_date=None,
        s_pre_mm=40,
        s_baseline_mm=50,
        # Δt_pre = 2017-02-01 -> 2017-03-30 = 57 d = 1.872690 months
        tgk_pre=5.339912280701754,  # (50 - 40) / (57 / 30.4375) = 5.3399 mm/month
        tgr_pre=42.97078132656027,  # 100 * (exp(3 * ln(50/40) / 1.872690) - 1) = 42.9708
        pp_pre=0.25,  # (50 - 40) / 40
        tgk_post=None,
        tgkr=None,
        tgr_post=None,
        pp_post=None,
        # DS: RANDOMIZED (blank DSCAT, a milestone) on FD does not count; ADVERSE EVENT (blank DSCAT) does
        ttf_months=0.6899383983572895,  # 2017-04-03 -> 2017-04-24 = 21 d / 30.4375
        stop_reason="ADVERSE EVENT",
        hpd=None,
    ),
    B3: dict(
        evaluability="incomplete_measurements",
        first_dose_date=date(2018, 6, 1),
        pre_baseline_date=date(2018, 4, 5),
        baseline_date=date(2018, 5, 29),
        first_evaluation_date=date(2018, 7, 27),
        s_pre_mm=36,
        s_baseline_mm=50,
        # Δt_pre = 2018-04-05 -> 2018-05-29 = 54 d = 1.774127 months
        tgk_pre=7.891203703703703,  # (50 - 36) / (54 / 30.4375) = 7.8912 mm/month
        tgr_pre=74.27969272294897,  # 100 * (exp(3 * ln(50/36) / 1.774127) - 1) = 74.2797
        pp_pre=0.3888888888888889,  # (50 - 36) / 36
        tgk_post=None,
        tgkr=None,
        tgr_post=None,
        pp_post=None,  # the first evaluation is incomplete
        ttf_months=4.008213552361396,  # 2018-06-01 -> DS PROGRESSIVE DISEASE 2018-10-01 = 122 d / 30.4375
        stop_reason="PROGRESSIVE DISEASE",
        response_first_evaluation_irrecist="NE",
        response_first_evaluation_recist="NE",
        pseudoprogression=False,  # NE, not PD, at the first evaluation
        hpd=None,
    ),
}


# --------------------------------------------------------------------------- tests: default run
def test_one_kinetics_row_per_treated_subject(wh):
    rows = _rows(wh, "select studyid, usubjid from analytics.tumor_kinetics")
    assert sorted((r["usubjid"], r["studyid"]) for r in rows) == sorted(STUDY.items())


@pytest.mark.parametrize("usubjid", SUBJECTS)
def test_assessments(wh, usubjid):
    got = _assessments(wh, usubjid)
    want = ASSESSMENTS[usubjid]
    assert [(_norm(r["assessment_date"]), r["role"]) for r in got] == [
        (w["assessment_date"], w["role"]) for w in want
    ], f"{usubjid}: assessments/roles"
    for row, exp in zip(got, want, strict=True):
        _check(row, dict(exp, studyid=STUDY[usubjid]), f"{usubjid} {exp['assessment_date']}")


@pytest.mark.parametrize("usubjid", sorted(KINETICS))
def test_kinetics(wh, usubjid):
    _check(_kinetics(wh, usubjid), dict(KINETICS[usubjid], studyid=STUDY[usubjid]), usubjid)


@pytest.mark.parametrize("usubjid", sorted(KINETICS_NOT_EVALUABLE))
def test_kinetics_of_subjects_not_evaluable(wh, usubjid):
    _check(_kinetics(wh, usubjid), KINETICS_NOT_EVALUABLE[usubjid], usubjid)


def test_cohort_attrition(wh):
    rows = _rows(
        wh, "select step, status, n, n_remaining from analytics.cohort_attrition order by step"
    )
    assert [(r["status"], r["n"], r["n_remaining"]) for r in rows] == [
        ("no_baseline_scan", 1, 7),  # B4; 7 treated subjects
        ("no_first_evaluation", 1, 6),  # A3; 7 - 1
        ("no_pre_baseline_scan", 1, 5),  # B2; 6 - 1
        ("incomplete_measurements", 1, 4),  # B3; 5 - 1
        ("evaluable", 3, 3),  # A1, A2, B1; 4 - 1
    ]


def test_rejected_rows(wh):
    rows = _rows(
        wh, "select file_name, row_number, column_name, reason from analytics.rejected_rows"
    )
    got = sorted(
        (
            os.path.basename(r["file_name"]).lower(),
            int(r["row_number"]),
            r["column_name"].upper() if r["column_name"] is not None else None,
            r["reason"],
        )
        for r in rows
    )
    assert got == [
        # tr.csv row 41: A2 baseline T01/LDIAM 21 mm dated 2017-01-27; row 36 (same lesion, test,
        # visit, reader) is dated 2017-01-29 and is kept (latest-dated wins over file order)
        ("tr.csv", 41, None, "duplicate"),
        # tr.csv row 84: B3 follow-up T01/LDIAM TRSTRESN 1.5 TRSTRESU "in"
        ("tr.csv", 84, "TRSTRESU", "invalid_unit"),
    ]
    # Not rejected: R1/R2 rows (reader selection), DIAMETER and nodal LDIAM rows (unused
    # tests), TRSTAT NOT DONE, partial dates, DS milestones, COMPLETED, RANDOMIZED.


def test_scan_intervals(wh):
    rows = _rows(wh, "select * from analytics.scan_intervals")
    by_subject: dict[str, list[dict]] = {}
    for r in rows:
        by_subject.setdefault(r["usubjid"], []).append(r)
    for subject_rows in by_subject.values():
        subject_rows.sort(key=lambda r: _norm(r["from_date"]))
        idx = [r["interval_index"] for r in subject_rows]
        assert idx == sorted(idx) and len(set(idx)) == len(idx)  # the base (0 or 1) is left open
    # Rule 15: complete assessments with roles pre_baseline/baseline/first_evaluation/follow_up.
    # tgr is only checked where no new lesion counts (burden = target sum): the SPEC does not
    # say which of the two the per-interval tgr uses.
    expected = {
        A1: [
            dict(
                from_role="pre_baseline",
                to_role="baseline",
                from_date=date(2016, 11, 10),
                to_date=date(2017, 1, 5),
                days=56,
                months=1.839835728952772,  # 56 / 30.4375
                burden_from_mm=30,
                burden_to_mm=40,
                tgk=5.435267857142858,
            ),  # 10 / 1.839836
            dict(
                from_role="baseline",
                to_role="first_evaluation",
                from_date=date(2017, 1, 5),
                to_date=date(2017, 3, 7),
                days=61,
                months=2.004106776180698,  # 61 / 30.4375
                burden_from_mm=40,
                burden_to_mm=80,
                tgk=19.959016393442624,
            ),  # 40 / 2.004107
        ],
        A2: [
            dict(
                from_role="pre_baseline",
                to_role="baseline",
                days=60,
                months=1.9712525667351128,
                burden_from_mm=40,
                burden_to_mm=50,
                tgk=5.072916666666667,  # 10 / 1.971253
                tgr=40.438093798932265,
            ),  # 100 * (exp(3 ln(50/40) / 1.971253) - 1)
            dict(
                from_role="baseline",
                to_role="first_evaluation",
                days=60,
                months=1.9712525667351128,
                burden_from_mm=50,
                burden_to_mm=58,
                tgk=4.058333333333334,  # 8 / 1.971253
                tgr=25.34211030228526,
            ),  # 100 * (exp(3 ln(58/50) / 1.971253) - 1)
            dict(
                from_role="first_evaluation",
                to_role="follow_up",
                from_date=date(2017, 3, 28),
                to_date=date(2017, 5, 1),  # imputed date
                days=34,
                months=1.1170431211498972,  # 2017-03-28 -> 2017-05-01 = 34 d
                burden_from_mm=58,
                burden_to_mm=60,
                tgk=1.7904411764705883,  # 2 / 1.117043
                tgr=9.532169016904323,
            ),  # 100 * (exp(3 ln(60/58) / 1.117043) - 1)
        ],
        A3: [
            dict(
                from_role="pre_baseline",
                to_role="baseline",
                days=57,
                months=1.8726899383983573,
                burden_from_mm=40,
                burden_to_mm=50,
                tgk=5.339912280701754,
                tgr=42.97078132656027,
            ),
        ],
        B1: [
            dict(
                from_role="pre_baseline",
                to_role="baseline",
                days=61,
                burden_from_mm=50,
                burden_to_mm=50,
                tgk=0.0,
            ),
            dict(
                from_role="baseline",
                to_role="first_evaluation",
                days=60,
                burden_from_mm=50,
                burden_to_mm=47,
                tgk=-1.521875,
            ),  # -3 / (60 / 30.4375)
            dict(
                from_role="first_evaluation",
                to_role="follow_up",
                days=60,
                burden_from_mm=47,
                burden_to_mm=40,
                tgk=-3.551041666666667,
            ),  # -7 / (60 / 30.4375)
        ],
        # B2: the `other` scan is not chained
        B2: [
            dict(
                from_role="baseline",
                to_role="first_evaluation",
                days=61,
                burden_from_mm=40,
                burden_to_mm=60,
                tgk=9.979508196721312,
                tgr=83.48291216934338,
            ),
        ],
        # B3: only pre-baseline -> baseline are complete
        B3: [
            dict(
                from_role="pre_baseline",
                to_role="baseline",
                days=54,
                months=1.7741273100616017,
                burden_from_mm=36,
                burden_to_mm=50,
                tgk=7.891203703703703,
                tgr=74.27969272294897,
            ),
        ],
        # B4: `other` + first evaluation only: nothing to chain
    }
    assert sorted(by_subject) == sorted(expected)
    for usubjid, want in expected.items():
        got = by_subject[usubjid]
        assert len(got) == len(want), f"{usubjid}: {len(got)} intervals, expected {len(want)}"
        for i, (row, exp) in enumerate(zip(got, want, strict=True)):
            _check(row, exp, f"{usubjid} interval {i}")


def test_hpd_classification(wh):
    rows = _rows(
        wh,
        "select usubjid, definition_id, is_hpd, not_judged_reason "
        "from analytics.hpd_classification",
    )
    got = {(r["usubjid"], r["definition_id"]): r for r in rows}
    # Definitions judged on the three evaluable subjects (TTF: A1 2.267, A2 3.253, B1 4.468 months).
    expected = {
        A1: dict(
            tgkr=True,  # TGK_pre 5.4353 > 0, TGKR 3.6721 >= 2
            champiat_2017=True,  # RECIST PD, TGR_pre 59.85 > 0, ratio 2.1904 >= 2
            ferrara_2018=True,  # RECIST PD, ΔTGR 71.25 > 50
            kas_2020=False,  # ΔTGR 71.25 <= 100
            kim_2019=True,  # tgkr and Champiat conditions both hold
            kato_2017=False,  # TTF 2.267 months is not < 2
        ),
        A2: dict(
            tgkr=False,  # TGKR 0.8 < 2
            champiat_2017=False,  # RECIST PD, TGR_pre 40.44 > 0 but ratio 0.6267 < 2
            ferrara_2018=False,  # ΔTGR -15.10
            kas_2020=False,
            kim_2019=False,
            kato_2017=False,  # TTF 3.253
        ),
        B1: dict(
            tgkr=False,  # TGK_pre = 0 <= 0
            champiat_2017=False,  # RECIST PD but TGR_pre = 0 (rule 10: false)
            ferrara_2018=False,  # ΔTGR -49.30
            kas_2020=False,
            kim_2019=False,  # TGK_pre = 0
            kato_2017=False,  # TTF 4.468
        ),
    }
    for usubjid, defs in expected.items():
        for definition_id, is_hpd in defs.items():
            row = got.get((usubjid, definition_id))
            assert row is not None, f"no {definition_id} row for {usubjid}"
            assert row["is_hpd"] is is_hpd, (
                f"{usubjid} {definition_id}: {row['is_hpd']!r}, expected {is_hpd}"
            )
    # Not evaluable: every definition needing an evaluable subject is null, with a reason.
    for usubjid in (A3, B2, B3, B4):
        for definition_id in (
            "tgkr",
            "champiat_2017",
            "ferrara_2018",
            "kas_2020",
            "kim_2019",
            "kato_2017",
        ):
            row = got.get((usubjid, definition_id))
            assert row is not None, f"no {definition_id} row for {usubjid}"
            assert row["is_hpd"] is None, (
                f"{usubjid} {definition_id}: {row['is_hpd']!r}, expected null"
            )
            assert row["not_judged_reason"], f"{usubjid} {definition_id}: no not_judged_reason"
    # analytics.hyperprogression carries the same booleans, one column per definition.
    hyper = {r["usubjid"]: r for r in _rows(wh, "select * from analytics.hyperprogression")}
    assert sorted(hyper) == sorted(SUBJECTS)
    for usubjid, defs in expected.items():
        for definition_id, is_hpd in defs.items():
            assert hyper[usubjid][f"hpd_{definition_id}"] is is_hpd, (
                f"{usubjid} hpd_{definition_id}"
            )
    for usubjid in (A3, B2, B3, B4):
        assert hyper[usubjid]["hpd_tgkr"] is None


# --------------------------------------------------------------------------- tests: --reader independent
def test_independent_read_assessments(wh_independent):
    # A1 as read by RADIOLOGIST 1 (TRACPTFL = Y), lesion ids R1-*, never RADIOLOGIST 2 (R2-*:
    # 60 / 65 / 95 + 30 mm, non-target UNEQUIVOCAL) nor the investigator (30 / 40 / 80).
    got = _assessments(wh_independent, A1)
    want = [
        dict(
            assessment_date=date(2016, 11, 10),
            study_day=-61,
            role="pre_baseline",
            target_sum_mm=34,  # R1-T01 22 + R1-T02 LPERP 12 (LDIAM 19 ignored)
            target_complete=True,
            new_lesion_sum_mm=ZERO_OR_NULL,
            irrecist_burden_mm=34,
            date_imputed=False,
        ),
        dict(
            assessment_date=date(2017, 1, 5),
            study_day=-5,
            role="baseline",
            target_sum_mm=40,  # R1-T01 28 + R1-T02 12
            target_complete=True,
            new_lesion_sum_mm=ZERO_OR_NULL,
            irrecist_burden_mm=40,
            date_imputed=False,
        ),
        dict(
            assessment_date=date(2017, 3, 7),
            study_day=57,
            role="first_evaluation",
            target_sum_mm=66,  # R1-T01 50 + R1-T02 16
            target_complete=True,
            new_lesion_sum_mm=12,  # R1-NEW01 12 mm >= 10
            irrecist_burden_mm=78,  # 66 + 12
            nadir_mm=40,
            response_irrecist="PD",  # 78 >= 48 and 38 >= 5
            response_recist="PD",  # 66 >= 48 and 26 >= 5
            date_imputed=False,
        ),
    ]
    assert [(_norm(r["assessment_date"]), r["role"]) for r in got] == [
        (w["assessment_date"], w["role"]) for w in want
    ]
    for row, exp in zip(got, want, strict=True):
        _check(row, exp, f"independent {A1} {exp['assessment_date']}")


def test_independent_read_kinetics(wh_independent):
    _check(
        _kinetics(wh_independent, A1),
        dict(
            evaluability="evaluable",
            s_pre_mm=34,
            s_baseline_mm=40,
            s_first_evaluation_mm=78,
            tgk_pre=3.2611607142857144,  # (40 - 34) / (56 d / 30.4375) = 3.2612 mm/month
            tgk_post=18.961065573770494,  # (78 - 40) / (61 d / 30.4375) = 18.9611 mm/month
            tgkr=5.814207650273224,  # (38/61) / (6/56) = 2128 / 366 = 5.8142
            tgr_pre=30.343120270957535,  # 100 * (exp(3 * ln(40/34) / 1.839836) - 1) = 30.3431
            tgr_post=111.6203462270672,  # 100 * (exp(3 * ln(66/40) / 2.004107) - 1) = 111.6203
            tgr_ratio=3.678604745666284,  # 111.6203 / 30.3431
            delta_tgr=81.27722595610967,  # 111.6203 - 30.3431
            pp_pre=0.17647058823529413,  # (40 - 34) / 34
            pp_post=0.95,  # (78 - 40) / 40
            ttf_months=2.2669404517453797,  # unchanged: 69 d / 30.4375
            stop_reason="PROGRESSIVE DISEASE",
            response_first_evaluation_irrecist="PD",
            response_first_evaluation_recist="PD",
            hpd=True,  # TGK_pre 3.2612 > 0 and TGKR 5.8142 >= 2
        ),
        f"independent {A1}",
    )


def test_independent_read_only_that_read(wh_independent):
    # One reader per refresh: the other subjects have investigator reads only, so with
    # --reader independent they have no assessment at all, hence no baseline scan.
    for usubjid in SUBJECTS:
        if usubjid != A1:
            assert _assessments(wh_independent, usubjid) == [], usubjid
            assert _kinetics(wh_independent, usubjid)["evaluability"] == "no_baseline_scan", usubjid
    rows = _rows(
        wh_independent,
        "select step, status, n, n_remaining from analytics.cohort_attrition order by step",
    )
    assert [(r["status"], r["n"], r["n_remaining"]) for r in rows] == [
        ("no_baseline_scan", 6, 7),
        ("no_first_evaluation", 0, 1),
        ("no_pre_baseline_scan", 0, 1),
        ("incomplete_measurements", 0, 1),
        ("evaluable", 1, 1),
    ]

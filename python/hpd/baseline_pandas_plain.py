"""The core kinetics table in straightforward pandas: what an analyst would write.

`core_kinetics(folder)` computes the same table as `hpd.baseline_pandas` (one row
per treated subject of a folder of SDTM exports, the columns of
`hpd.core_kinetics.COLUMNS`, the investigator read; SPEC §2 and its rules for
the corner cases), written the way an analyst writes it rather than tuned for
speed. pandas reads the exports and parses their columns (`pd.to_datetime`,
`pd.to_numeric`, one boolean mask per check), TR is merged with TU, and then
each subject's assessments, roles, burdens and kinetics are derived with
ordinary Python, one subject at a time, following SPEC §2 step by step:

1. read          each export's columns as text (blank = null), names in any case;
2. subjects      the first dose: the earliest EXSTDTC, else DM.RFXSTDTC;
3. lesions       the investigator's lesions in TU: class, organ, nodal (rule 4);
4. results       the investigator's LDIAM / LPERP / TUMSTATE rows of those lesions,
                 in mm; rejected rows and duplicates (rule 6) left out;
5. per subject   assessments and their dates (rule 2), roles (rule 1), target sums,
                 the new lesions that count (rule 8), burdens, kinetics, status.

Diameters are summed as `decimal.Decimal` rounded to 1e-9 mm, as the warehouse
sums them as `decimal(18, 9)`: equal lesions give equal sums in any order.
The staging checks of the columns read are applied (required values, readable
dates and numbers, units, negative results, unknown lesions, duplicates); a
refresh's blocking checks (repeated DM subjects, ...) are not. Lesion states
(TUMSTATE) decide responses only, which the core table has not: here TUMSTATE
rows only form and date assessments.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hpd.baseline_pandas import Settings
from hpd.core_kinetics import COLUMNS, DATE_COLUMNS, NUMBER_COLUMNS
from hpd.loader import find_export

NUMBER_PATTERN = r"[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?"
NANOMETRE = Decimal("1e-9")  # the warehouse sums diameters as decimal(18, 9)

DM_COLUMNS = ("studyid", "usubjid", "rfxstdtc")
EX_COLUMNS = ("studyid", "usubjid", "extrt", "exstdtc", "exendtc")
TU_COLUMNS = (
    "studyid",
    "usubjid",
    "tulnkid",
    "tuorres",
    "tustresc",
    "tuloc",
    "tueval",
    "visitnum",
    "tudtc",
)
TR_COLUMNS = (
    "studyid",
    "usubjid",
    "trlnkid",
    "trtestcd",
    "trstresn",
    "trstresc",
    "trstresu",
    "trorres",
    "trorresu",
    "trstat",
    "treval",
    "visitnum",
    "visit",
    "trdtc",
)


def core_kinetics(folder: Path, settings: Settings | None = None) -> pd.DataFrame:
    """One row per treated subject of the exports in `folder`, with exactly
    `hpd.core_kinetics.COLUMNS`, for the investigator read."""
    folder = Path(folder)
    settings = settings or Settings.defaults()
    first_doses = first_dose_dates(
        read_export(folder, "dm", DM_COLUMNS), read_export(folder, "ex", EX_COLUMNS)
    )
    lesions = investigator_lesions(read_export(folder, "tu", TU_COLUMNS))
    results = lesion_results(read_export(folder, "tr", TR_COLUMNS), lesions)

    targets = lesions[lesions["lesion_class"] == "TARGET"].groupby("usubjid")["lesion_id"].agg(set)
    target_lesions: dict[str, set[str]] = targets.to_dict()
    results_by_subject = dict(iter(results.groupby("usubjid", sort=False)))
    rows = [
        subject_kinetics(
            usubjid,
            first_dose,
            target_lesions.get(usubjid, set()),
            results_by_subject.get(usubjid, results.iloc[:0]),
            settings,
        )
        for usubjid, first_dose in first_doses.items()
    ]
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    for column in DATE_COLUMNS:
        table[column] = pd.to_datetime(table[column])
    for column in NUMBER_COLUMNS:
        table[column] = table[column].astype(float)
    return table


# ---------------------------------------------------------------------------
# 1. Reading and parsing


def read_export(folder: Path, domain: str, columns: Sequence[str]) -> pd.DataFrame:
    """`columns` (lower case) of one domain's export as text, trimmed, blanks as
    null; a column the file lacks is all null. Column names match in any case."""
    path = find_export(folder, domain)
    if path is None:
        raise FileNotFoundError(f"{folder}: no {domain}.csv or {domain}.parquet")
    if path.suffix.lower() == ".parquet":
        raw = pd.read_parquet(path)
    else:
        wanted = set(columns)
        raw = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            usecols=lambda name: name.strip().lower() in wanted,
        )
    raw.columns = [str(name).strip().lower() for name in raw.columns]
    frame = pd.DataFrame(index=raw.index)
    for column in columns:
        if column in raw.columns:
            text = raw[column].astype("str").str.strip(" ")
            frame[column] = text.where(text != "")
        else:
            frame[column] = pd.Series(np.nan, index=raw.index, dtype="str")
    return frame


def sdtm_dates(text: pd.Series) -> pd.DataFrame:
    """SDTM dates (SPEC §1): `date` (the time dropped, a partial date imputed to
    the first day of its month or year), `imputed`, and `invalid` (given but
    unreadable: the row is rejected)."""
    full = text.str.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ].*)?")
    month = text.str.fullmatch(r"[0-9]{4}-[0-9]{2}")
    year = text.str.fullmatch(r"[0-9]{4}")
    iso = text.str.slice(0, 10).where(full)
    iso = iso.fillna((text + "-01").where(month)).fillna((text + "-01-01").where(year))
    date = pd.to_datetime(iso, format="%Y-%m-%d", errors="coerce")
    return pd.DataFrame(
        {"date": date, "imputed": month | year, "invalid": text.notna() & date.isna()}
    )


def numbers(text: pd.Series) -> pd.Series:
    """Plain decimal numbers (`12`, `-0.5`, `1e3`); null when the text is not one."""
    return pd.to_numeric(text.where(text.str.fullmatch(NUMBER_PATTERN)), errors="coerce")


def is_investigator(evaluator: pd.Series) -> pd.Series:
    """The investigator's rows: TREVAL / TUEVAL `INVESTIGATOR` or blank."""
    return evaluator.isna() | (evaluator.str.upper() == "INVESTIGATOR")


# ---------------------------------------------------------------------------
# 2. Subjects


def first_dose_dates(dm: pd.DataFrame, ex: pd.DataFrame) -> pd.Series:
    """The first dose of each treated subject, indexed by USUBJID in DM order:
    the earliest EXSTDTC, else DM.RFXSTDTC for a subject without EX rows."""
    dm = dm[dm["studyid"].notna() & dm["usubjid"].notna()].drop_duplicates("usubjid")
    start = sdtm_dates(ex["exstdtc"])
    valid = (
        ex[["studyid", "usubjid", "extrt", "exstdtc"]].notna().all(axis=1)
        & ~start["invalid"]
        & ~sdtm_dates(ex["exendtc"])["invalid"]
    )
    first_exposure = start.loc[valid, "date"].groupby(ex.loc[valid, "usubjid"]).min()
    reference = sdtm_dates(dm["rfxstdtc"])["date"]
    first_dose = dm["usubjid"].map(first_exposure).fillna(reference)
    return pd.Series(first_dose.to_numpy(), index=dm["usubjid"].to_numpy()).dropna()


# ---------------------------------------------------------------------------
# 3. Lesions


def investigator_lesions(tu: pd.DataFrame) -> pd.DataFrame:
    """One row per lesion the investigator identified: `usubjid`, `lesion_id`,
    `lesion_class`, `organ` and `is_nodal`, from its first identification row
    (the earliest dated, then the lowest VISITNUM, then the first in the file:
    rule 4)."""
    identified = sdtm_dates(tu["tudtc"])
    visitnum = numbers(tu["visitnum"])
    valid = (
        tu[["studyid", "usubjid", "tulnkid", "tuorres"]].notna().all(axis=1)
        & ~identified["invalid"]
        & ~(tu["visitnum"].notna() & visitnum.isna())
    )
    organ = tu["tuloc"].str.upper()
    lesions = pd.DataFrame(
        {
            "usubjid": tu["usubjid"],
            "lesion_id": tu["tulnkid"],
            "lesion_class": tu["tustresc"].fillna(tu["tuorres"]).str.upper(),
            "organ": organ.fillna("UNKNOWN"),
            "is_nodal": organ == "LYMPH NODE",
            "date": identified["date"],
            "visitnum": visitnum,
            "row": np.arange(len(tu)),
        }
    )[valid & is_investigator(tu["tueval"])]
    first_rows = lesions.sort_values(["date", "visitnum", "row"], na_position="last")
    first_rows = first_rows.drop_duplicates(["usubjid", "lesion_id"])
    return first_rows[["usubjid", "lesion_id", "lesion_class", "organ", "is_nodal"]]


# ---------------------------------------------------------------------------
# 4. Results


def lesion_results(tr: pd.DataFrame, lesions: pd.DataFrame) -> pd.DataFrame:
    """The investigator's LDIAM, LPERP and TUMSTATE rows of identified lesions
    that pass staging, one per lesion, test and assessment, with `usubjid`,
    `lesion_id`, `key` (the assessment: VISITNUM, else VISIT, else the date),
    `visitnum`, `date`, `imputed`, the lesion's `lesion_class`, `organ`,
    `is_nodal`, and `diameter_mm`: the result of the lesion's own test (LPERP
    for nodal lesions, LDIAM for others), null when not assessed."""
    test = tr["trtestcd"].str.upper()
    measured_on = sdtm_dates(tr["trdtc"])
    visitnum = numbers(tr["visitnum"])

    # Rule 4: NOT DONE -> not assessed; ABSENT / NOT PRESENT -> 0 mm; a number
    # with its own unit, as a pair (TRSTRESN/TRSTRESU, else TRORRES/TRORRESU;
    # mm or blank, cm x 10); otherwise not assessed.
    standard = numbers(tr["trstresn"])
    number = standard.fillna(numbers(tr["trorres"]))
    unit = tr["trstresu"].where(standard.notna(), tr["trorresu"]).fillna("").str.lower()
    is_diameter = test.isin(["LDIAM", "LPERP"])
    not_done = tr["trstat"].str.upper() == "NOT DONE"
    absent = tr["trstresc"].str.upper().isin(["ABSENT", "NOT PRESENT"])
    uses_number = is_diameter & ~not_done & ~absent & number.notna()
    result_mm = number.where(unit != "cm", number * 10).where(uses_number)
    result_mm = result_mm.mask(is_diameter & ~not_done & absent, 0.0)

    rejected = (
        tr[["studyid", "usubjid", "trlnkid", "trtestcd"]].isna().any(axis=1)
        | tr[["visitnum", "visit", "trdtc"]].isna().all(axis=1)
        | measured_on["invalid"]
        | (tr["visitnum"].notna() & visitnum.isna())
        | (tr["trstresn"].notna() & standard.isna() & is_diameter & ~not_done & ~absent)
        | (uses_number & ~unit.isin(["mm", "cm", ""]))
        | (uses_number & (number < 0))
    )
    key = ("VISITNUM " + visitnum.astype(str)).where(
        visitnum.notna(),
        ("VISIT " + tr["visit"].str.upper()).fillna("DATE " + tr["trdtc"].str.slice(0, 10)),
    )
    results = pd.DataFrame(
        {
            "usubjid": tr["usubjid"],
            "lesion_id": tr["trlnkid"],
            "test": test,
            "key": key,
            "visitnum": visitnum,
            "date": measured_on["date"],
            "imputed": measured_on["imputed"],
            "result_mm": result_mm,
            "row": np.arange(len(tr)),
        }
    )[
        ~rejected
        & is_investigator(tr["treval"])
        & test.isin(["LDIAM", "LPERP", "TUMSTATE"])  # other tests are not used for sums
    ]
    # Rule 5: rows of lesions the investigator did not identify are rejected.
    results = results.merge(lesions, on=["usubjid", "lesion_id"], how="inner")
    # Rule 6: one lesion measured twice by one test in one assessment: keep the
    # latest-dated row (an undated one loses), then the last in the file.
    results = results.sort_values(["date", "row"], na_position="first").drop_duplicates(
        ["usubjid", "key", "lesion_id", "test"], keep="last"
    )
    own_test = np.where(results["is_nodal"], "LPERP", "LDIAM")
    results["diameter_mm"] = results["result_mm"].where(results["test"] == own_test)
    return results.drop(columns=["test", "result_mm", "row"])


# ---------------------------------------------------------------------------
# 5. Per subject: assessments, roles, burdens, kinetics


@dataclass
class Lesion:
    lesion_class: str
    organ: str
    is_nodal: bool


@dataclass
class Assessment:
    """One tumor assessment of a subject: its TR rows of one VISITNUM (VISIT, date)."""

    key: str
    visitnum: float | None
    date: pd.Timestamp | None = None
    full_dates: list[pd.Timestamp] = field(default_factory=list)
    imputed_dates: list[pd.Timestamp] = field(default_factory=list)
    diameters: dict[str, float] = field(default_factory=dict)  # lesion id -> mm


def subject_assessments(rows: pd.DataFrame) -> tuple[list[Assessment], dict[str, Lesion]]:
    """A subject's assessments in order (date, then numeric VISITNUM, then key;
    undated last), each dated by its earliest full date, an imputed one only
    when it has no full date (rule 2); and the subject's measured lesions."""
    assessments: dict[str, Assessment] = {}
    lesions: dict[str, Lesion] = {}
    for row in rows.itertuples(index=False):
        visitnum = None if math.isnan(row.visitnum) else row.visitnum
        assessment = assessments.setdefault(row.key, Assessment(row.key, visitnum))
        if not pd.isna(row.date):
            (assessment.imputed_dates if row.imputed else assessment.full_dates).append(row.date)
        if not math.isnan(row.diameter_mm):
            assessment.diameters[row.lesion_id] = row.diameter_mm
        lesions[row.lesion_id] = Lesion(row.lesion_class, row.organ, row.is_nodal)
    for assessment in assessments.values():
        dates = assessment.full_dates or assessment.imputed_dates
        assessment.date = min(dates) if dates else None
    return sorted(assessments.values(), key=_assessment_order), lesions


def _assessment_order(assessment: Assessment) -> tuple[Any, ...]:
    date, visitnum = assessment.date, assessment.visitnum
    return (
        date is None,
        date if date is not None else pd.Timestamp.min,
        visitnum is None,
        visitnum if visitnum is not None else 0.0,
        assessment.key,
    )


def _days(start: pd.Timestamp, end: pd.Timestamp) -> int:
    return int((end - start).days)


def _exact(mm: float) -> Decimal:
    """A diameter as the warehouse's decimal(18, 9)."""
    return Decimal(mm).quantize(NANOMETRE, rounding=ROUND_HALF_UP)


def _at_least(value: float, threshold: float, settings: Settings) -> bool:
    """value >= threshold within the relative tolerance of rule 9."""
    return value >= threshold - settings.threshold_tolerance * abs(threshold)


def counted_new_lesions(
    post_dose: list[Assessment], lesions: dict[str, Lesion], settings: Settings
) -> dict[str, int]:
    """The new lesions that count in the irRECIST burden (rule 8), each with the
    position in `post_dose` of the assessment where it first became measurable
    (at least 10 mm, nodal short axis 15 mm, by default). They fill 5 slots, 2
    per organ, by first measurability date, then size (largest first), then id."""
    first_measurable: dict[str, tuple[int, pd.Timestamp, float]] = {}
    for position, assessment in enumerate(post_dose):
        for lesion_id, mm in assessment.diameters.items():
            lesion = lesions[lesion_id]
            if lesion.lesion_class != "NEW" or lesion_id in first_measurable:
                continue
            threshold = (
                settings.new_lesion_measurable_nodal_mm
                if lesion.is_nodal
                else settings.new_lesion_measurable_mm
            )
            if _at_least(mm, threshold, settings):
                first_measurable[lesion_id] = (position, assessment.date, mm)

    def rank(lesion_id: str) -> tuple[pd.Timestamp, float, str]:
        _, date, mm = first_measurable[lesion_id]
        return (date, -mm, lesion_id)

    counted: dict[str, int] = {}
    per_organ: Counter[str] = Counter()
    for lesion_id in sorted(first_measurable, key=rank):
        organ = lesions[lesion_id].organ
        per_organ[organ] += 1
        if (
            per_organ[organ] <= settings.new_lesions_max_per_organ
            and len(counted) < settings.new_lesions_max
        ):
            counted[lesion_id] = first_measurable[lesion_id][0]
    return counted


@dataclass
class Burden:
    """An assessment's target sum (null when no target is measured), whether
    it is complete (every target lesion measured, 0 counts), and its irRECIST
    burden (target sum + the counted new lesions measured there)."""

    target_sum_mm: float | None
    complete: bool
    irrecist_mm: float | None


def burden(
    assessment: Assessment,
    target_lesions: set[str],
    counted: dict[str, int],
    position: int | None,
) -> Burden:
    """The burden at `assessment`; `position` is its place among the post-dose
    assessments (None before the dose, where the burden is the target sum)."""
    targets = [
        _exact(mm) for lesion, mm in assessment.diameters.items() if lesion in target_lesions
    ]
    if not targets:
        return Burden(None, False, None)
    target_sum = float(sum(targets))
    complete = len(targets) == len(target_lesions)
    new_lesions = [
        _exact(assessment.diameters[lesion])
        for lesion, first in counted.items()
        if position is not None and first <= position and lesion in assessment.diameters
    ]
    # Two doubles added, as the warehouse adds its two exact sums.
    return Burden(target_sum, complete, target_sum + float(sum(new_lesions, Decimal(0))))


def _months(start: Assessment | None, end: Assessment | None, settings: Settings) -> float | None:
    if start is None or end is None or start.date is None or end.date is None:
        return None
    return _days(start.date, end.date) / settings.days_per_month


def _tgk(s_from: float | None, s_to: float | None, months: float | None) -> float | None:
    """Tumor growth kinetics, mm/month."""
    if s_from is None or s_to is None or months is None:
        return None
    return (s_to - s_from) / months


def _tgr(s_from: float | None, s_to: float | None, months: float | None) -> float | None:
    """Ferté's TGR, %/month: 100 (exp(3 ln(S_to / S_from) / months) - 1); null
    when either sum is 0 (or missing)."""
    if s_from is None or s_to is None or months is None:
        return None
    if s_from <= 0 or s_to <= 0 or months <= 0:
        return None
    return 100 * (math.exp(3 * math.log(s_to / s_from) / months) - 1)


def subject_kinetics(
    usubjid: str,
    first_dose: pd.Timestamp,
    target_lesions: set[str],
    rows: pd.DataFrame,
    settings: Settings,
) -> dict[str, Any]:
    """One subject's row of the core kinetics table: its three scans, their
    burdens when complete, months, TGK, TGKR, TGR and the evaluability status."""
    assessments, lesions = subject_assessments(rows)
    dated = [assessment for assessment in assessments if assessment.date is not None]

    # Roles, over all assessments complete or not (rule 1). The baseline: the
    # latest on or before the first dose, at most 42 days before it (by default).
    baseline = None
    for assessment in dated:
        if 0 <= _days(assessment.date, first_dose) <= settings.baseline_max_days:
            baseline = assessment
    # The pre-baseline: the latest 14 to 183 days before the baseline.
    pre_baseline = None
    if baseline is not None and baseline.date is not None:
        for assessment in dated:
            gap = _days(assessment.date, baseline.date)
            if settings.pre_baseline_min_gap_days <= gap <= settings.pre_baseline_max_gap_days:
                pre_baseline = assessment
        if pre_baseline is baseline:  # a gap of 0 allowed: the baseline role wins
            pre_baseline = None
    # The first evaluation: the earliest after the first dose.
    post_dose = [assessment for assessment in dated if assessment.date > first_dose]
    first_evaluation = post_dose[0] if post_dose else None

    counted = counted_new_lesions(post_dose, lesions, settings)
    no_scan = Burden(None, False, None)
    pre = burden(pre_baseline, target_lesions, counted, None) if pre_baseline else no_scan
    base = burden(baseline, target_lesions, counted, None) if baseline else no_scan
    first = burden(first_evaluation, target_lesions, counted, 0) if first_evaluation else no_scan

    # Kinetics use complete assessments only.
    s_pre = pre.irrecist_mm if pre.complete else None
    s_baseline = base.irrecist_mm if base.complete else None
    s_first = first.irrecist_mm if first.complete else None
    sum_pre = pre.target_sum_mm if pre.complete else None
    sum_baseline = base.target_sum_mm if base.complete else None
    sum_first = first.target_sum_mm if first.complete else None
    months_pre = _months(pre_baseline, baseline, settings)
    months_post = _months(baseline, first_evaluation, settings)
    tgk_pre = _tgk(s_pre, s_baseline, months_pre)
    tgk_post = _tgk(s_baseline, s_first, months_post)
    tgkr = None if tgk_pre is None or tgk_post is None or tgk_pre == 0 else tgk_post / tgk_pre

    if baseline is None:
        evaluability = "no_baseline_scan"
    elif first_evaluation is None:
        evaluability = "no_first_evaluation"
    elif pre_baseline is None:
        evaluability = "no_pre_baseline_scan"
    elif not (pre.complete and base.complete and first.complete):
        evaluability = "incomplete_measurements"
    else:
        evaluability = "evaluable"

    return {
        "usubjid": usubjid,
        "evaluability": evaluability,
        "first_dose_date": first_dose,
        "pre_baseline_date": pre_baseline.date if pre_baseline else None,
        "baseline_date": baseline.date if baseline else None,
        "first_evaluation_date": first_evaluation.date if first_evaluation else None,
        "target_sum_pre_mm": sum_pre,
        "target_sum_baseline_mm": sum_baseline,
        "target_sum_first_evaluation_mm": sum_first,
        "s_pre_mm": s_pre,
        "s_baseline_mm": s_baseline,
        "s_first_evaluation_mm": s_first,
        "months_pre": months_pre,
        "months_post": months_post,
        "tgk_pre": tgk_pre,
        "tgk_post": tgk_post,
        "tgkr": tgkr,
        "tgr_pre": _tgr(sum_pre, sum_baseline, months_pre),
        "tgr_post": _tgr(sum_baseline, sum_first, months_post),
    }

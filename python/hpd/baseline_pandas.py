"""The core kinetics table in plain pandas: the benchmark's analyst baseline.

`core_kinetics(folder)` reads a folder of SDTM exports (`dm`, `ex`, `tu`, `tr`
as `.csv` or `.parquet`, found and matched case-insensitively, every value as
text like the warehouse's loader) and returns one row per treated subject with
the columns of `hpd.core_kinetics.COLUMNS`, for the investigator read (SPEC §2
and its rules for the corner cases). It is what a competent analyst would write
instead of the warehouse: vectorised (merge, groupby, sort, rank), one function
per step:

1. read      the columns needed, as trimmed text (blank = null);
2. subjects  the first dose: the earliest EXSTDTC, else DM.RFXSTDTC;
3. lesions   the investigator's lesions: class, organ, nodal (first identification row);
4. results   the investigator's LDIAM / LPERP / TUMSTATE rows of identified lesions,
             in mm, duplicates removed (rule 6), each lesion's own diameter;
5. assessments  the VISITNUM (VISIT, date) groups, dated (rule 2) and ordered;
6. roles     baseline, pre-baseline and first evaluation (rule 1);
7. burden    target sum and completeness, counted new lesions (rule 8), irRECIST burden;
8. kinetics  months, TGK, TGKR, TGR and the evaluability status.

Diameters are summed as integers of 1e-9 mm, as the warehouse sums them as
`decimal(18, 9)`: equal lesions give equal sums whatever the order of addition.
Only what the synthetic cohorts need of the rejection rules is applied
(unparseable dates and numbers, unknown units, negative results, unknown lesions,
duplicates); a refresh's blocking checks (repeated DM subjects, ...) are not.
Lesion states (TUMSTATE) decide responses only, which the core table has not:
here TUMSTATE rows only form and date assessments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hpd.core_kinetics import COLUMNS
from hpd.loader import find_export
from hpd.project import default_settings

NUMBER_PATTERN = r"[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?"
FULL_DATE_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ].*)?"
MONTH_PATTERN = r"[0-9]{4}-[0-9]{2}"
YEAR_PATTERN = r"[0-9]{4}"

USED_TESTS = ("LDIAM", "LPERP", "TUMSTATE")  # other test codes are not used for sums
LDIAM, LPERP = 0, 1  # positions in USED_TESTS
UNITS = ("MM", "CM")
MM, CM = 0, 1  # positions in UNITS
ABSENT_RESULTS = ("ABSENT", "NOT PRESENT")
NANOMETRES_PER_MM = 1e9  # the warehouse's decimal(18, 9)

DM_COLUMNS = ("usubjid", "rfxstdtc")
EX_COLUMNS = ("usubjid", "exstdtc")
TU_COLUMNS = ("usubjid", "tulnkid", "tuorres", "tustresc", "tuloc", "tueval", "visitnum", "tudtc")
TR_COLUMNS = (
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

SUBJECT = "subject"  # an integer code: the position of the subject in DM
ASSESSMENT = ["subject", "key"]


@dataclass(frozen=True)
class Settings:
    """The settings of SPEC §2 the core table depends on (dbt vars)."""

    days_per_month: float
    baseline_max_days: int
    pre_baseline_min_gap_days: int
    pre_baseline_max_gap_days: int
    new_lesion_measurable_mm: float
    new_lesion_measurable_nodal_mm: float
    new_lesions_max: int
    new_lesions_max_per_organ: int
    threshold_tolerance: float

    @classmethod
    def defaults(cls) -> Settings:
        """The project's defaults (dbt_project.yml), as the warehouse uses them."""
        values = default_settings()
        return cls(
            days_per_month=float(values["days_per_month"]),
            baseline_max_days=int(values["baseline_max_days"]),
            pre_baseline_min_gap_days=int(values["pre_baseline_min_gap_days"]),
            pre_baseline_max_gap_days=int(values["pre_baseline_max_gap_days"]),
            new_lesion_measurable_mm=float(values["new_lesion_measurable_mm"]),
            new_lesion_measurable_nodal_mm=float(values["new_lesion_measurable_nodal_mm"]),
            new_lesions_max=int(values["new_lesions_max"]),
            new_lesions_max_per_organ=int(values["new_lesions_max_per_organ"]),
            threshold_tolerance=float(values["threshold_tolerance"]),
        )


def core_kinetics(folder: Path, settings: Settings | None = None) -> pd.DataFrame:
    """One row per treated subject of the exports in `folder`, with exactly
    `hpd.core_kinetics.COLUMNS`, for the investigator read."""
    folder = Path(folder)
    settings = settings or Settings.defaults()
    subject_ids, first_dose = treated_subjects(
        read_export(folder, "dm", DM_COLUMNS), read_export(folder, "ex", EX_COLUMNS)
    )
    lesions = investigator_lesions(read_export(folder, "tu", TU_COLUMNS), subject_ids)
    results = lesion_results(read_export(folder, "tr", TR_COLUMNS), subject_ids, lesions)
    assessments = assign_roles(dated_assessments(results), first_dose, settings)
    assessments = add_burden(assessments, results, lesions, settings)
    return kinetics(subject_ids, first_dose, assessments, settings)


# ---------------------------------------------------------------------------
# 1. Reading


def read_export(folder: Path, domain: str, columns: Sequence[str]) -> pd.DataFrame:
    """`columns` (lower case) of one domain's export as text, trimmed, blanks as
    null; a column the file lacks is all null. Column names match in any case."""
    path = find_export(folder, domain)
    if path is None:
        raise FileNotFoundError(f"{folder}: no {domain}.csv or {domain}.parquet")
    parquet = path.suffix.lower() == ".parquet"
    names = pq.read_schema(path).names if parquet else pd.read_csv(path, nrows=0).columns
    by_lower = {str(name).strip().lower(): str(name) for name in names}
    wanted = [by_lower[column] for column in columns if column in by_lower]
    if parquet:
        table = pq.read_table(path, columns=wanted)
        # Every value as text, as the warehouse's loader casts them (decimal 52.2 -> "52.2").
        frame = pa.table([column.cast(pa.string()) for column in table.columns], names=wanted)
        raw = frame.to_pandas()
    else:
        raw = pd.read_csv(
            path,
            usecols=wanted,
            dtype=str,
            engine="pyarrow",
            keep_default_na=False,
            na_values=[""],
        )
    out = pd.DataFrame(index=raw.index)
    for column in columns:
        if column in by_lower:
            text = raw.pop(by_lower[column]).str.strip(" ")
            out[column] = text.where(text != "")
        else:
            out[column] = pd.Series(None, index=raw.index, dtype="str")
    return out


def _by_distinct_value(text: pd.Series, parse: Callable[[pd.Series], pd.DataFrame]) -> pd.DataFrame:
    """`parse` applied once per distinct value of `text` (SDTM columns repeat a
    few values over millions of rows), spread back over the rows. `parse` gets
    the distinct values followed by one null and returns a frame in that order."""
    codes, uniques = pd.factorize(text)
    distinct = pd.Series([*uniques, None], dtype="str")
    parsed = parse(distinct).reset_index(drop=True)
    return parsed.iloc[codes].set_axis(text.index)  # code -1 (null) takes the last row


def _parse_numbers(text: pd.Series) -> pd.DataFrame:
    is_number = text.str.fullmatch(NUMBER_PATTERN).fillna(False).astype(bool)
    return pd.DataFrame({"number": pd.to_numeric(text.where(is_number), errors="coerce")})


def _parse_dates(text: pd.Series) -> pd.DataFrame:
    """ISO 8601 text: the date (time dropped, partial dates imputed to the first
    day), whether it was imputed, whether it is given but unreadable."""
    full = text.str.fullmatch(FULL_DATE_PATTERN).fillna(False).astype(bool)
    month = text.str.fullmatch(MONTH_PATTERN).fillna(False).astype(bool)
    year = text.str.fullmatch(YEAR_PATTERN).fillna(False).astype(bool)
    iso = text.str.slice(0, 10).where(full, (text + "-01").where(month, text + "-01-01"))
    dates = pd.to_datetime(iso.where(full | month | year), format="%Y-%m-%d", errors="coerce")
    return pd.DataFrame(
        {"date": dates, "imputed": (month | year), "invalid": text.notna() & dates.isna()}
    )


def numbers(text: pd.Series) -> pd.Series:
    """Plain decimal numbers from text; null when the text is not one."""
    return _by_distinct_value(text, _parse_numbers)["number"]


def dates(text: pd.Series) -> pd.DataFrame:
    """Columns `date`, `imputed`, `invalid` of SDTM dates (`_parse_dates`)."""
    return _by_distinct_value(text, _parse_dates)


def _positions(text: pd.Series, index: pd.Index, upper: bool = False) -> np.ndarray:
    """The position in `index` of each value of `text` (upper-cased first when
    `upper`), -1 when absent or null; looked up once per distinct value."""
    codes, uniques = pd.factorize(text)
    keys = pd.Index(uniques, dtype="str")
    found = index.get_indexer(keys.str.upper() if upper else keys)
    return np.append(found, -1)[codes].astype(np.int32)  # code -1 (null) takes the last


def _matches(text: pd.Series, values: Sequence[str]) -> np.ndarray:
    """Whether each value of `text`, upper-cased, is one of `values` (null: no)."""
    return _positions(text, pd.Index(values, dtype="str"), upper=True) >= 0


def _subject_codes(usubjid: pd.Series, subject_ids: pd.Index) -> np.ndarray:
    """The subjects' positions in DM (-1 for a subject not in DM)."""
    return _positions(usubjid, subject_ids)


def _is_investigator(evaluator: pd.Series) -> np.ndarray:
    """The investigator's rows: TREVAL / TUEVAL `INVESTIGATOR` or blank."""
    return evaluator.isna().to_numpy(bool) | _matches(evaluator, ["INVESTIGATOR"])


# ---------------------------------------------------------------------------
# 2. Subjects


def treated_subjects(dm: pd.DataFrame, ex: pd.DataFrame) -> tuple[pd.Index, pd.Series]:
    """The DM subjects (their position is the subject code used below) and the
    first dose of the treated ones, indexed by subject code: the earliest
    EXSTDTC, DM.RFXSTDTC for a subject without EX rows."""
    subject_ids = pd.Index(dm["usubjid"].dropna().drop_duplicates(), dtype="str")
    ex_dates = dates(ex["exstdtc"])
    ex_subject = _subject_codes(ex["usubjid"], subject_ids)
    valid = ~ex_dates["invalid"].to_numpy() & (ex_subject >= 0)
    first_exposure = ex_dates.loc[valid, "date"].groupby(ex_subject[valid]).min()
    dm_rows = dm.dropna(subset=["usubjid"]).drop_duplicates("usubjid")
    reference = dates(dm_rows["rfxstdtc"])["date"].set_axis(
        _subject_codes(dm_rows["usubjid"], subject_ids)
    )
    first_dose = first_exposure.reindex(reference.index).fillna(reference)
    first_dose.index.name = SUBJECT
    return subject_ids, first_dose.dropna().rename("first_dose_date")


# ---------------------------------------------------------------------------
# 3. Lesions


def investigator_lesions(tu: pd.DataFrame, subject_ids: pd.Index) -> pd.DataFrame:
    """One row per lesion the investigator identified: `subject`, `lesion` (a
    code), `lesion_id` (categorical: `lesion` is its code, and codes sort like
    the ids), `lesion_class`, `organ`, `is_nodal`, from its first
    identification row (the earliest dated, then the lowest VISITNUM, then the
    first in the file: rule 4)."""
    tu = tu[_is_investigator(tu["tueval"]) & tu["usubjid"].notna().to_numpy(bool)]
    tu = tu[tu["tulnkid"].notna() & tu["tuorres"].notna()]
    identified = dates(tu["tudtc"])
    visitnum = numbers(tu["visitnum"])
    rejected = identified["invalid"] | (tu["visitnum"].notna() & visitnum.isna())
    lesion, lesion_ids = pd.factorize(tu["tulnkid"], sort=True)
    location = tu["tuloc"].str.upper()
    frame = pd.DataFrame(
        {
            SUBJECT: _subject_codes(tu["usubjid"], subject_ids),
            "lesion": lesion.astype(np.int32),
            "lesion_class": tu["tustresc"].fillna(tu["tuorres"]).str.upper().astype("category"),
            "organ": location.fillna("UNKNOWN").astype("category"),
            "is_nodal": (location == "LYMPH NODE").to_numpy(bool),
            "date": identified["date"],
            "visitnum": visitnum,
            "row": np.arange(len(tu)),
        }
    )[~rejected.to_numpy(bool)]
    first_rows = (
        frame[frame[SUBJECT] >= 0]
        .sort_values([SUBJECT, "lesion", "date", "visitnum", "row"], na_position="last")
        .drop_duplicates([SUBJECT, "lesion"])
    )
    first_rows["lesion_id"] = pd.Categorical.from_codes(first_rows["lesion"], lesion_ids)
    columns = [SUBJECT, "lesion", "lesion_id", "lesion_class", "organ", "is_nodal"]
    return first_rows[columns].reset_index(drop=True)


# ---------------------------------------------------------------------------
# 4. Results


def _unit_codes(unit: pd.Series) -> np.ndarray:
    """0 for mm (or blank), 1 for cm, -1 for any other unit (case-insensitive)."""
    return np.where(unit.isna(), MM, _positions(unit, pd.Index(UNITS, dtype="str"), upper=True))


def _results_mm(tr: pd.DataFrame, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's result in mm (rule 4) and whether the row is rejected for its
    number or unit: NOT DONE -> not assessed; ABSENT / NOT PRESENT -> 0 mm; a
    number with its unit as a pair (TRSTRESN/TRSTRESU, else TRORRES/TRORRESU;
    mm or blank, cm x 10); otherwise not assessed."""
    standard = numbers(tr["trstresn"]).to_numpy()
    original = numbers(tr["trorres"]).to_numpy()
    use_standard = ~np.isnan(standard)
    number = np.where(use_standard, standard, original)
    unit = np.where(use_standard, _unit_codes(tr["trstresu"]), _unit_codes(tr["trorresu"]))
    is_diameter = (test == LDIAM) | (test == LPERP)
    not_done = _matches(tr["trstat"], ["NOT DONE"])
    absent = _matches(tr["trstresc"], ABSENT_RESULTS)
    uses_number = is_diameter & ~not_done & ~absent & ~np.isnan(number)
    result_mm = np.select(
        [~is_diameter | not_done, absent, uses_number & (unit == CM), uses_number],
        [np.nan, 0.0, number * 10, number],
        np.nan,
    )
    invalid_number = tr["trstresn"].notna().to_numpy(bool) & ~use_standard
    rejected = (
        (invalid_number & is_diameter & ~not_done & ~absent)
        | (uses_number & (unit < 0))
        | (uses_number & (number < 0))
    )
    return result_mm, rejected


def _assessment_keys(tr: pd.DataFrame, visitnum: pd.Series) -> np.ndarray:
    """An integer per assessment key: VISITNUM, else VISIT, else the date
    (SPEC §1). Codes sort like the warehouse's key text (`VISITNUM 2.0`,
    `VISIT SCREENING`, `DATE 2019-03-01`), which breaks ties in date order."""
    visitnum_codes, visitnum_texts = pd.factorize(tr["visitnum"])
    visitnum_keys = pd.Series(
        [f"VISITNUM {value!r}" for value in numbers(pd.Series(visitnum_texts, dtype="str"))],
        dtype="str",
    )
    unnumbered = visitnum.isna().to_numpy()
    other = tr.loc[unnumbered]
    other_keys = ("VISIT " + other["visit"].str.upper()).fillna(
        "DATE " + other["trdtc"].str.slice(0, 10)
    )
    keys = pd.Index(np.sort(pd.concat([visitnum_keys, other_keys]).dropna().unique()), dtype="str")
    codes = np.append(keys.get_indexer(visitnum_keys), -1)[visitnum_codes]
    codes[unnumbered] = keys.get_indexer(other_keys)
    return codes.astype(np.int32)


def lesion_results(tr: pd.DataFrame, subject_ids: pd.Index, lesions: pd.DataFrame) -> pd.DataFrame:
    """The investigator's LDIAM, LPERP and TUMSTATE rows of identified lesions
    that pass staging, one per lesion, test and assessment (rule 6: the
    latest-dated row, then the last in the file), with `subject`, `lesion`,
    `key`, `visitnum`, `date`, `imputed`, `lesion_class`, `organ`, `is_nodal`
    and `diameter_mm` (the lesion's own test: LPERP for nodal lesions, LDIAM
    otherwise; null when not assessed)."""
    test = _positions(tr["trtestcd"], pd.Index(USED_TESTS, dtype="str"), upper=True)
    result_mm, bad_result = _results_mm(tr, test)
    measured_on = dates(tr["trdtc"])
    visitnum = numbers(tr["visitnum"])
    unkeyed = tr["visitnum"].isna() & tr["visit"].isna() & tr["trdtc"].isna()
    rejected = (
        bad_result
        | measured_on["invalid"].to_numpy(bool)
        | (tr["visitnum"].notna() & visitnum.isna()).to_numpy(bool)
        | unkeyed.to_numpy(bool)
    )
    used = _is_investigator(tr["treval"]) & (test >= 0) & ~rejected
    frame = pd.DataFrame(
        {
            SUBJECT: _subject_codes(tr["usubjid"], subject_ids),
            "lesion": _lesion_codes(tr["trlnkid"], lesions),
            "test": test.astype(np.int8),
            "key": _assessment_keys(tr, visitnum),
            "visitnum": visitnum.to_numpy(),
            "date": measured_on["date"].to_numpy(),
            "imputed": measured_on["imputed"].to_numpy(bool),
            "result_mm": result_mm,
            "row": np.arange(len(tr)),
        }
    )[used]
    # Rows of lesions the investigator did not identify are rejected (rule 5).
    frame = frame.merge(lesions.drop(columns="lesion_id"), on=[SUBJECT, "lesion"], how="inner")
    frame = _drop_duplicates(frame)
    own_test = np.where(frame["is_nodal"], LPERP, LDIAM)
    frame["diameter_mm"] = frame["result_mm"].where(frame["test"] == own_test)
    return frame.drop(columns=["result_mm", "row", "test"])


def _lesion_codes(lesion_id: pd.Series, lesions: pd.DataFrame) -> np.ndarray:
    """The lesion code of each id (-1 when no lesion has that id)."""
    return _positions(lesion_id, lesions["lesion_id"].cat.categories)


def _drop_duplicates(frame: pd.DataFrame) -> pd.DataFrame:
    """Rule 6: of the rows measuring one lesion by one test in one assessment,
    keep the latest-dated (an undated row loses), then the last in the file."""
    measurement = [SUBJECT, "key", "lesion", "test"]
    repeated = frame.duplicated(measurement, keep=False)
    if not repeated.any():
        return frame
    candidates = frame[repeated].sort_values(["date", "row"], na_position="first")
    losers = candidates.index[candidates.duplicated(measurement, keep="last")]
    return frame.drop(index=losers)


# ---------------------------------------------------------------------------
# 5. Assessments


def dated_assessments(results: pd.DataFrame) -> pd.DataFrame:
    """One row per subject and assessment key: `visitnum`, `date` (the earliest
    full date, an imputed one only without a full date: rule 2) and `order`
    (date, then numeric VISITNUM, then key; undated last), sorted by subject
    and order."""
    dated = pd.DataFrame(
        {
            SUBJECT: results[SUBJECT],
            "key": results["key"],
            "visitnum": results["visitnum"],
            "full_date": results["date"].where(~results["imputed"]),
            "imputed_date": results["date"].where(results["imputed"]),
        }
    )
    grouped = dated.groupby(ASSESSMENT, sort=False).min().reset_index()
    grouped["date"] = grouped["full_date"].fillna(grouped["imputed_date"])
    ordered = grouped.sort_values(
        [SUBJECT, "date", "visitnum", "key"], na_position="last", ignore_index=True
    )
    ordered["order"] = ordered.groupby(SUBJECT).cumcount() + 1
    return ordered[[SUBJECT, "key", "date", "order"]]


# ---------------------------------------------------------------------------
# 6. Roles


def assign_roles(
    assessments: pd.DataFrame, first_dose: pd.Series, settings: Settings
) -> pd.DataFrame:
    """`role` of each assessment (rule 1, complete or not): `baseline` (the
    latest on or before the first dose, at most `baseline_max_days` before),
    `pre_baseline` (the latest 14-183 days, by default, before the baseline),
    `first_evaluation` (the earliest after the first dose); plus `is_post_dose`."""
    frame = assessments.merge(first_dose.reset_index(), on=SUBJECT, how="left")
    days_before_dose = (frame["first_dose_date"] - frame["date"]).dt.days
    frame["is_post_dose"] = (days_before_dose < 0).to_numpy(bool)

    in_window = days_before_dose.between(0, settings.baseline_max_days)
    baseline = frame[in_window].drop_duplicates(SUBJECT, keep="last")
    baseline_date = frame[SUBJECT].map(baseline.set_index(SUBJECT)["date"])
    gap = (baseline_date - frame["date"]).dt.days
    in_gap = gap.between(settings.pre_baseline_min_gap_days, settings.pre_baseline_max_gap_days)
    pre_baseline = frame[in_gap].drop_duplicates(SUBJECT, keep="last")
    first_evaluation = frame[frame["is_post_dose"]].drop_duplicates(SUBJECT, keep="first")

    # Written in reverse precedence: an assessment takes the first role that applies.
    frame["role"] = pd.Series(pd.NA, index=frame.index, dtype="str")
    frame.loc[first_evaluation.index, "role"] = "first_evaluation"
    frame.loc[pre_baseline.index, "role"] = "pre_baseline"
    frame.loc[baseline.index, "role"] = "baseline"
    return frame.drop(columns="first_dose_date")


# ---------------------------------------------------------------------------
# 7. Burden


def _nanometres(diameter_mm: pd.Series) -> pd.Series:
    """Diameters as integers of 1e-9 mm, rounded half away from zero like a
    cast to decimal(18, 9) (diameters are never negative)."""
    return np.floor(diameter_mm * NANOMETRES_PER_MM + 0.5).astype(np.int64)


def _at_least(value: pd.Series, threshold: float, settings: Settings) -> pd.Series:
    """value >= threshold within the relative tolerance of rule 9."""
    return value >= threshold - settings.threshold_tolerance * abs(threshold)


def target_sums(results: pd.DataFrame, lesions: pd.DataFrame) -> pd.DataFrame:
    """Per assessment with a target measurement: `targets_measured` and the
    exact `target_sum_nm`; with `target_lesions` per subject for completeness."""
    measured = results[(results["lesion_class"] == "TARGET") & results["diameter_mm"].notna()]
    sums = (
        pd.DataFrame(
            {
                SUBJECT: measured[SUBJECT],
                "key": measured["key"],
                "target_sum_nm": _nanometres(measured["diameter_mm"]),
            }
        )
        .groupby(ASSESSMENT, sort=False)
        .agg(targets_measured=("target_sum_nm", "size"), target_sum_nm=("target_sum_nm", "sum"))
        .reset_index()
    )
    target_lesions = lesions[lesions["lesion_class"] == "TARGET"].groupby(SUBJECT).size()
    sums["target_lesions"] = sums[SUBJECT].map(target_lesions)
    return sums


def counted_new_lesions(
    results: pd.DataFrame, assessments: pd.DataFrame, settings: Settings
) -> pd.DataFrame:
    """The new lesions that count in the irRECIST burden (rule 8), with the
    order of the assessment where each first became measurable (at least 10
    mm, nodal 15 mm, after the first dose). They fill `new_lesions_max` slots,
    `new_lesions_max_per_organ` per organ, by first measurability date, then
    size (largest first), then lesion id."""
    post_dose = assessments.loc[assessments["is_post_dose"], [*ASSESSMENT, "date", "order"]]
    new = results.loc[
        (results["lesion_class"] == "NEW") & results["diameter_mm"].notna(),
        [*ASSESSMENT, "lesion", "organ", "is_nodal", "diameter_mm"],
    ].merge(post_dose, on=ASSESSMENT, how="inner")
    measurable = new[
        np.where(
            new["is_nodal"],
            _at_least(new["diameter_mm"], settings.new_lesion_measurable_nodal_mm, settings),
            _at_least(new["diameter_mm"], settings.new_lesion_measurable_mm, settings),
        )
    ]
    first = measurable.sort_values([SUBJECT, "lesion", "order"]).drop_duplicates(
        [SUBJECT, "lesion"]
    )
    ranked = first.sort_values(
        [SUBJECT, "date", "diameter_mm", "lesion"], ascending=[True, True, False, True]
    )
    ranked["organ_slot"] = ranked.groupby([SUBJECT, "organ"], observed=True).cumcount() + 1
    eligible = ranked[ranked["organ_slot"] <= settings.new_lesions_max_per_organ].copy()
    eligible["slot"] = eligible.groupby(SUBJECT).cumcount() + 1
    counted = eligible[eligible["slot"] <= settings.new_lesions_max]
    return counted[[SUBJECT, "lesion"]].assign(first_measurable_order=counted["order"])


def new_lesion_sums(
    results: pd.DataFrame, assessments: pd.DataFrame, counted: pd.DataFrame
) -> pd.DataFrame:
    """Per post-dose assessment, the exact sum of the counted new lesions
    measured there from their first measurable assessment on."""
    post_dose = assessments.loc[assessments["is_post_dose"], [*ASSESSMENT, "order"]]
    measured = (
        results.loc[results["diameter_mm"].notna(), [*ASSESSMENT, "lesion", "diameter_mm"]]
        .merge(counted, on=[SUBJECT, "lesion"], how="inner")
        .merge(post_dose, on=ASSESSMENT, how="inner")
    )
    measured = measured[measured["order"] >= measured["first_measurable_order"]]
    return (
        measured.assign(new_lesion_sum_nm=_nanometres(measured["diameter_mm"]))
        .groupby(ASSESSMENT, sort=False)["new_lesion_sum_nm"]
        .sum()
        .reset_index()
    )


def add_burden(
    assessments: pd.DataFrame, results: pd.DataFrame, lesions: pd.DataFrame, settings: Settings
) -> pd.DataFrame:
    """Per assessment: `target_sum_mm` (null when no target is measured),
    `target_complete` (every target lesion measured, 0 counts; false without
    target lesions) and `irrecist_burden_mm` (target sum + counted new lesions
    after the first dose)."""
    counted = counted_new_lesions(results, assessments, settings)
    frame = assessments.merge(target_sums(results, lesions), on=ASSESSMENT, how="left").merge(
        new_lesion_sums(results, assessments, counted), on=ASSESSMENT, how="left"
    )
    frame["target_sum_mm"] = frame["target_sum_nm"] / NANOMETRES_PER_MM
    frame["target_complete"] = (
        (frame["target_lesions"] > 0) & (frame["targets_measured"] == frame["target_lesions"])
    ).to_numpy(bool)
    new_lesion_sum_mm = frame["new_lesion_sum_nm"].fillna(0) / NANOMETRES_PER_MM
    # Two doubles added, as the warehouse adds its two exact sums.
    frame["irrecist_burden_mm"] = frame["target_sum_mm"] + new_lesion_sum_mm
    return frame[
        [SUBJECT, "role", "date", "target_sum_mm", "target_complete", "irrecist_burden_mm"]
    ]


# ---------------------------------------------------------------------------
# 8. Kinetics


def _months(start: pd.Series, end: pd.Series, settings: Settings) -> pd.Series:
    return (end - start).dt.days.astype(float) / settings.days_per_month


def _tgr(sum_from: pd.Series, sum_to: pd.Series, months: pd.Series) -> pd.Series:
    """Ferté's TGR, %/month: 100 (exp(3 ln(S_to / S_from) / months) - 1);
    null when either sum is 0 (or missing)."""
    defined = (sum_from > 0) & (sum_to > 0) & (months > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = 100 * (np.exp(3 * np.log(sum_to / sum_from) / months) - 1)
    return rate.where(defined)


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """numerator / denominator, null when the denominator is 0."""
    return (numerator / denominator).where(denominator != 0)


def kinetics(
    subject_ids: pd.Index, first_dose: pd.Series, assessments: pd.DataFrame, settings: Settings
) -> pd.DataFrame:
    """The core kinetics table: the three scans of each treated subject, their
    burdens when complete, months, TGK, TGKR, TGR and the evaluability status."""
    out = first_dose.to_frame()
    roles = {"pre_baseline": "pre", "baseline": "baseline", "first_evaluation": "first_evaluation"}
    for role, name in roles.items():
        scan = assessments[assessments["role"] == role].set_index(SUBJECT)
        complete = scan["target_complete"]
        out[f"has_{name}"] = out.index.isin(scan.index)
        out[f"{role}_date"] = scan["date"]
        out[f"complete_{name}"] = complete.reindex(out.index, fill_value=False).to_numpy(bool)
        out[f"s_{name}_mm"] = scan["irrecist_burden_mm"].where(complete)
        out[f"target_sum_{name}_mm"] = scan["target_sum_mm"].where(complete)

    out["months_pre"] = _months(out["pre_baseline_date"], out["baseline_date"], settings)
    out["months_post"] = _months(out["baseline_date"], out["first_evaluation_date"], settings)
    out["tgk_pre"] = (out["s_baseline_mm"] - out["s_pre_mm"]) / out["months_pre"]
    out["tgk_post"] = (out["s_first_evaluation_mm"] - out["s_baseline_mm"]) / out["months_post"]
    out["tgkr"] = _ratio(out["tgk_post"], out["tgk_pre"])
    out["tgr_pre"] = _tgr(
        out["target_sum_pre_mm"], out["target_sum_baseline_mm"], out["months_pre"]
    )
    out["tgr_post"] = _tgr(
        out["target_sum_baseline_mm"], out["target_sum_first_evaluation_mm"], out["months_post"]
    )
    incomplete = ~(
        out["complete_pre"] & out["complete_baseline"] & out["complete_first_evaluation"]
    )
    out["evaluability"] = np.select(
        [
            ~out["has_baseline"],
            ~out["has_first_evaluation"],
            ~out["has_pre"],
            incomplete,
        ],
        [
            "no_baseline_scan",
            "no_first_evaluation",
            "no_pre_baseline_scan",
            "incomplete_measurements",
        ],
        "evaluable",
    )
    out["usubjid"] = subject_ids[out.index]
    return out.reset_index(drop=True)[list(COLUMNS)]

"""The pandas baselines of the benchmark: the tuned one (python/hpd/baseline_pandas.py)
and the straightforward one (python/hpd/baseline_pandas_plain.py).

Each must give the core kinetics table of the warehouse (`analytics.tumor_kinetics`)
to the last digit, for a synthetic cohort with a few hand-written subjects
added for the corner cases the generator does not produce (new-lesion slots,
duplicates, VISIT and date keys, imputed dates, ties on a date, cm units,
a first dose from DM). The warehouse is built once, with `dbt build` of
tumor_kinetics and its parents only (no data tests), to keep this file fast;
every check runs against both implementations.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from conftest import build_kinetics_warehouse
from hpd import baseline_pandas, baseline_pandas_plain, synth
from hpd.core_kinetics import COLUMNS, compare

SUBJECTS = 1500
SEED = 31337
STUDY = "CORNER-1"

CoreKinetics = Callable[[Path], pd.DataFrame]
IMPLEMENTATIONS: dict[str, CoreKinetics] = {
    "tuned": baseline_pandas.core_kinetics,
    "plain": baseline_pandas_plain.core_kinetics,
}


def _append(folder: Path, domain: str, rows: list[dict[str, str]]) -> None:
    """Append rows to an export, in its own column order (blank for the rest)."""
    path = folder / f"{domain}.csv"
    with path.open(encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    with path.open("a", encoding="utf-8", newline="") as handle:
        csv.DictWriter(handle, header, restval="", lineterminator="\n").writerows(rows)


def _subject(number: int) -> str:
    return f"{STUDY}-{number:02d}"


def _dm(number: int, first_dose: str) -> dict[str, str]:
    return {"STUDYID": STUDY, "DOMAIN": "DM", "USUBJID": _subject(number), "RFXSTDTC": first_dose}


def _ex(number: int, start: str) -> dict[str, str]:
    row = {"STUDYID": STUDY, "DOMAIN": "EX", "USUBJID": _subject(number)}
    return row | {"EXTRT": "nivolumab", "EXSTDTC": start}


def _tu(number: int, lesion: str, kind: str, organ: str, **extra: str) -> dict[str, str]:
    row = {"STUDYID": STUDY, "DOMAIN": "TU", "USUBJID": _subject(number), "TULNKID": lesion}
    row |= {"TUORRES": kind, "TUSTRESC": kind, "TULOC": organ, "TUEVAL": "INVESTIGATOR"}
    return row | {"VISITNUM": "1", "TUDTC": "2019-11-01"} | extra


def _tr(
    number: int, lesion: str, test: str, mm: str, visitnum: str, visit: str, date: str, **extra: str
) -> dict[str, str]:
    row = {"STUDYID": STUDY, "DOMAIN": "TR", "USUBJID": _subject(number), "TRLNKID": lesion}
    row |= {"TRTESTCD": test, "TREVAL": "INVESTIGATOR", "VISITNUM": visitnum, "VISIT": visit}
    row |= {"TRDTC": date, "TRORRES": mm, "TRORRESU": "mm" if mm else ""}
    row |= {"TRSTRESC": mm, "TRSTRESN": mm, "TRSTRESU": "mm" if mm else ""}
    return row | extra


def _scan(number: int, sizes: dict[str, str], visitnum: str, date: str) -> list[dict[str, str]]:
    """One assessment of target lesions: lesion id -> size (N.. nodal: LPERP)."""
    return [
        _tr(number, lesion, "LPERP" if lesion.startswith("N") else "LDIAM", mm, visitnum, "", date)
        for lesion, mm in sizes.items()
    ]


def _corner_cases() -> dict[str, list[dict[str, str]]]:
    """Hand-written subjects, each checked against the warehouse (and a few
    against hand-computed values in `test_corner_cases_by_hand`)."""
    dm, ex, tu, tr = [], [], [], []

    # 1: new-lesion slots (5, 2 per organ, ties by size then id), duplicates.
    dm.append(_dm(1, "2020-03-01"))
    ex.append(_ex(1, "2020-03-01"))
    tu += [_tu(1, "T01", "TARGET", "LIVER"), _tu(1, "N01", "TARGET", "lymph node")]
    tu[-1]["TUSTRESC"] = ""  # class from TUORRES; organ in lower case
    new = {"L1": ("LIVER", "12"), "L2": ("LIVER", "15"), "L3": ("LIVER", "15")}
    new |= {"L4": ("LIVER", "30"), "U5": ("LUNG", "11"), "U6": ("LUNG", "20")}
    new |= {"U7": ("LUNG", "25"), "X8": ("", "10.0"), "P9": ("PERITONEUM", "10.05")}
    new |= {"M1": ("LYMPH NODE", "12"), "S1": ("STOMACH", "8")}
    for lesion, (organ, _) in new.items():
        tu.append(_tu(1, lesion, "NEW", organ, VISITNUM="3", TUDTC="2020-04-15"))
    tr += _scan(1, {"T01": "40.0", "N01": "20.0"}, "1", "2019-12-01")
    # Two rows of T01 at the baseline: the later-dated one wins, and the
    # rejected row's earlier date does not date the assessment.
    tr += _scan(1, {"T01": "45.0"}, "2", "2020-02-19")
    tr += _scan(1, {"T01": "41.5", "N01": "21.0"}, "2", "2020-02-20")
    # Two rows of N01 on one date at the first evaluation: the last one wins.
    tr += _scan(1, {"T01": "44.0", "N01": "20.0"}, "3", "2020-04-15")
    tr += _scan(1, {"N01": "22.0"}, "3", "2020-04-15")
    tr += [_tr(1, lesion, "LDIAM", mm, "3", "", "2020-04-15") for lesion, (_, mm) in new.items()]
    tr[-2]["TRTESTCD"] = "LPERP"  # the nodal new lesion M1 by its short axis: not measurable

    # 2: assessment keys and dates; first dose from DM only (no EX rows).
    dm.append(_dm(2, "2020-03-01"))
    tu += [_tu(2, "T01", "TARGET", "LUNG"), _tu(2, "NT1", "NON-TARGET", "BONE")]
    # Keyed by VISIT; dated by its full date, not the earlier imputed one.
    tr.append(_tr(2, "T01", "LDIAM", "25.0", "", "Pre scan", "2019-12"))
    tr.append(_tr(2, "NT1", "TUMSTATE", "", "", "Pre scan", "2019-12-10T08:30", TRSTRESC="PRESENT"))
    # Two assessments on one date: VISITNUM 3 comes after 2.5 and is the baseline.
    tr += _scan(2, {"T01": "33.0"}, "3", "2020-02-25")
    tr += _scan(2, {"T01": "30.0"}, "2.5", "2020-02-25T09:00")
    # Keyed by date; the result in cm only, in TRORRES.
    tr.append(_tr(2, "T01", "ldiam", "", "", "", "2020-04-20T10:00", TRORRES="3.6", TRORRESU="CM"))
    tr.append(_tr(2, "T01", "LDIAM", "31.0", "", "", "2020-07"))  # only an imputed date

    # 3: identical sums (TGK_pre = 0, TGKR null); all targets gone (TGR_post null).
    dm.append(_dm(3, "2020-01-01"))
    ex += [_ex(3, "2020-03-10"), _ex(3, "2020-03-01")]
    sizes = {"T01": "10.1", "T02": "20.2", "T03": "30.3"}
    tu += [_tu(3, lesion, "TARGET", "LIVER") for lesion in sizes]
    tu.append(_tu(3, "R1-T01", "TARGET", "LIVER", TUEVAL="INDEPENDENT ASSESSOR"))
    tr += _scan(3, sizes, "1", "2019-11-20")
    tr += _scan(3, dict(reversed(sizes.items())), "2", "2020-02-28")
    gone = [_tr(3, "T01", "LDIAM", "0", "3", "", "2020-04-28")]
    gone += [_tr(3, "T02", "LDIAM", "", "3", "", "2020-04-28", TRSTRESC="NOT PRESENT")]
    gone += [_tr(3, "T03", "LDIAM", "0.0", "3", "", "2020-04-28", TREVAL="")]
    tr += gone
    tr.append(_tr(3, "T99", "LDIAM", "99", "3", "", "2020-04-28"))  # an unknown lesion
    tr.append(_tr(3, "R1-T01", "LDIAM", "99", "3", "", "2020-04-28", TREVAL="INDEPENDENT ASSESSOR"))

    # 4: a target NOT DONE at the baseline: incomplete measurements.
    dm.append(_dm(4, "2020-03-01"))
    ex.append(_ex(4, "2020-03-01"))
    tu += [_tu(4, "T01", "TARGET", "COLON"), _tu(4, "T02", "TARGET", "LIVER")]
    tr += _scan(4, {"T01": "20.0", "T02": "15.0"}, "1", "2019-12-01")
    tr += _scan(4, {"T01": "22.0"}, "2", "2020-02-20")
    tr.append(_tr(4, "T02", "LDIAM", "17.0", "2", "", "2020-02-20", TRSTAT="not done"))
    tr += _scan(4, {"T01": "26.0", "T02": "19.0"}, "3", "2020-04-20")
    return {"dm": dm, "ex": ex, "tu": tu, "tr": tr}


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic cohort as CSV exports, with the corner-case subjects."""
    folder = tmp_path_factory.mktemp("baseline_pandas") / "exports"
    synth.generate(SUBJECTS, folder, seed=SEED)
    for domain, rows in _corner_cases().items():
        _append(folder, domain, rows)
    return folder


@pytest.fixture(scope="module")
def warehouse_table(exports: Path) -> pd.DataFrame:
    """`analytics.tumor_kinetics` built by dbt from those exports."""
    warehouse = build_kinetics_warehouse(exports)
    # Not read-only: dbt-duckdb may still hold the file open in this process.
    with duckdb.connect(str(warehouse)) as con:
        return con.execute("select * from analytics.tumor_kinetics").df()


@pytest.fixture(scope="module", params=list(IMPLEMENTATIONS))
def core_kinetics(request: pytest.FixtureRequest) -> CoreKinetics:
    """Each pandas implementation in turn (the warehouse is built only once)."""
    return IMPLEMENTATIONS[request.param]


@pytest.fixture(scope="module")
def pandas_table(exports: Path, core_kinetics: CoreKinetics) -> pd.DataFrame:
    return core_kinetics(exports)


def test_agrees_with_the_warehouse(
    warehouse_table: pd.DataFrame, pandas_table: pd.DataFrame
) -> None:
    assert tuple(pandas_table.columns) == COLUMNS
    assert pandas_table["usubjid"].is_unique
    assert compare(warehouse_table, pandas_table) == []


def _row(table: pd.DataFrame, number: int) -> dict[str, Any]:
    rows = table[table["usubjid"] == _subject(number)].to_dict("records")
    assert len(rows) == 1
    return rows[0]


def test_corner_cases_by_hand(pandas_table: pd.DataFrame) -> None:
    slots = _row(pandas_table, 1)
    assert slots["evaluability"] == "evaluable"
    assert slots["baseline_date"] == pd.Timestamp("2020-02-20")
    assert slots["s_baseline_mm"] == pytest.approx(41.5 + 21.0)
    # Targets 44 + 22, new lesions L4 30, U7 25, U6 20, L2 15, P9 10.05 (X8 sixth).
    assert slots["s_first_evaluation_mm"] == pytest.approx(66.0 + 100.05)
    assert slots["target_sum_first_evaluation_mm"] == pytest.approx(66.0)

    keys = _row(pandas_table, 2)
    assert keys["first_dose_date"] == pd.Timestamp("2020-03-01")
    assert keys["pre_baseline_date"] == pd.Timestamp("2019-12-10")
    assert keys["s_baseline_mm"] == pytest.approx(33.0)
    assert keys["first_evaluation_date"] == pd.Timestamp("2020-04-20")
    assert keys["s_first_evaluation_mm"] == pytest.approx(36.0)
    assert keys["months_post"] == pytest.approx(55 / 30.4375)

    flat = _row(pandas_table, 3)
    assert flat["first_dose_date"] == pd.Timestamp("2020-03-01")
    assert flat["tgk_pre"] == 0.0
    assert math.isnan(flat["tgkr"])
    assert flat["s_first_evaluation_mm"] == 0.0
    assert math.isnan(flat["tgr_post"])

    assert _row(pandas_table, 4)["evaluability"] == "incomplete_measurements"


def test_csv_and_parquet_give_the_same_table(tmp_path: Path, core_kinetics: CoreKinetics) -> None:
    tables = [
        core_kinetics(synth.generate(300, tmp_path / form, seed=SEED, file_format=form).out_dir)
        for form in ("csv", "parquet")
    ]
    pd.testing.assert_frame_equal(*tables)

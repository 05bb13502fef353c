"""The demo cohort reproduces the paper (SPEC §6), read from the marts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from scipy import stats

from conftest import query, query_dicts

# The five case reports: age, sex, primary site, histology, regimen, months to
# the first evaluation, % increase of the burden from baseline, months to
# death, metastatic sites.
CASE_REPORTS = [
    (31, "F", "COLORECTAL", "ADENOCARCINOMA", "PD-L1", 1.2, 863, 3.6, 1),
    (63, "F", "STOMACH", "ADENOCARCINOMA", "PD-L1", 1.4, 107, 7.4, 3),
    (63, "M", "COLORECTAL", "NEUROENDOCRINE CARCINOMA", "PD-L1", 0.94, 139, 2.1, 5),
    (65, "M", "STOMACH", "NEUROENDOCRINE CARCINOMA", "PD-L1", 1.4, 44, 5.6, 1),
    (49, "M", "ESOPHAGUS", "NEUROENDOCRINE CARCINOMA", "PD-L1 + CTLA-4", 1.2, 538, 3.8, 1),
]

EVALUABLE = """
    select c.*, k.hpd, k.tgkr
    from analytics.subject_characteristics as c
    inner join analytics.tumor_kinetics as k using (usubjid)
    where k.evaluability = 'evaluable'
"""


def test_flowchart(demo_warehouse: Path) -> None:
    rows = query(
        demo_warehouse,
        "select status, n, n_remaining from analytics.cohort_attrition order by step",
    )
    assert rows == [
        ("no_baseline_scan", 0, 45),
        ("no_first_evaluation", 8, 45),
        ("no_pre_baseline_scan", 12, 37),
        ("incomplete_measurements", 0, 25),
        ("evaluable", 25, 25),
    ]


def test_stopped_before_first_evaluation_for_progression_or_toxicity(demo_warehouse: Path) -> None:
    reasons = query(
        demo_warehouse,
        "select stop_reason from analytics.tumor_kinetics "
        "where evaluability = 'no_first_evaluation'",
    )
    assert len(reasons) == 8
    assert {reason for (reason,) in reasons} <= {"PROGRESSIVE DISEASE", "ADVERSE EVENT"}


def test_several_trials(demo_warehouse: Path) -> None:
    studies = {row[0] for row in query(demo_warehouse, "select studyid from analytics.survival")}
    assert len(studies) >= 3
    assert studies <= {"NCT02825940", "NCT02978482", "NCT02915432", "NCT03167853", "CTR20160872"}


def test_the_five_hyperprogressors_are_the_case_reports(demo_warehouse: Path) -> None:
    rows = query_dicts(
        demo_warehouse,
        """
        select c.age, c.sex, c.primsite, c.histol, c.regimen, c.metsites,
            datediff('day', k.first_dose_date, k.first_evaluation_date) / 30.4375
                as months_to_first_evaluation,
            h.pct_change_first_evaluation, s.os_months, s.event
        from analytics.hyperprogression as h
        inner join analytics.tumor_kinetics as k using (usubjid)
        inner join analytics.subject_characteristics as c using (usubjid)
        inner join analytics.survival as s using (usubjid)
        where h.hpd_tgkr
        order by c.age, c.sex
        """,
    )
    assert len(rows) == 5
    expected = sorted(CASE_REPORTS, key=lambda case: (case[0], case[1]))
    for row, case in zip(rows, expected, strict=True):
        age, sex, site, histology, regimen, months_eval, pct, months_death, metsites = case
        assert (row["age"], row["sex"], row["primsite"], row["histol"], row["regimen"]) == (
            age,
            sex,
            site,
            histology,
            regimen,
        )
        assert row["metsites"] == metsites
        assert row["months_to_first_evaluation"] == pytest.approx(months_eval, abs=0.02)
        assert round(row["pct_change_first_evaluation"]) == pct
        assert row["event"] is True
        assert row["os_months"] == pytest.approx(months_death, abs=0.02)


def test_no_subject_flagged_with_a_bare_ratio_of_two(demo_warehouse: Path) -> None:
    flagged = query(
        demo_warehouse,
        "select count(*) from analytics.tumor_kinetics where tgk_pre_non_positive and tgkr >= 2",
    )
    assert flagged == [(0,)]


def test_first_evaluation_responses(demo_warehouse: Path) -> None:
    rows = query(
        demo_warehouse,
        "select response_first_evaluation_irrecist, count(*) from analytics.tumor_kinetics "
        "where evaluability = 'evaluable' group by all",
    )
    assert dict(rows) == {"PD": 15, "SD": 8, "PR": 2}


def test_two_pseudoprogressions_in_colon_carcinomas(demo_warehouse: Path) -> None:
    rows = query_dicts(
        demo_warehouse,
        """
        select k.usubjid, k.tgkr, k.response_second_evaluation_irrecist, c.primsite
        from analytics.tumor_kinetics as k
        inner join analytics.subject_characteristics as c using (usubjid)
        where k.pseudoprogression
        order by k.tgkr
        """,
    )
    assert [round(row["tgkr"], 2) for row in rows] == [0.11, 1.67]
    assert {row["primsite"] for row in rows} == {"COLORECTAL"}
    assert {row["response_second_evaluation_irrecist"] for row in rows} == {"SD"}


def _counts(rows: list[dict], column: str, transform=lambda v: v) -> dict:  # type: ignore[no-untyped-def]
    return {
        group: Counter(
            transform(row[column])
            for row in rows
            if row["hpd"] is group and row[column] is not None
        )
        for group in (False, True)
    }


def test_table_1_counts(demo_warehouse: Path) -> None:
    rows = query_dicts(demo_warehouse, EVALUABLE)
    assert Counter(row["hpd"] for row in rows) == {False: 20, True: 5}
    assert _counts(rows, "sex") == {False: {"M": 14, "F": 6}, True: {"M": 3, "F": 2}}
    assert _counts(rows, "ecog_baseline") == {False: {0: 10, 1: 10}, True: {0: 4, 1: 1}}
    assert _counts(rows, "primsite") == {
        False: {
            "STOMACH": 6,
            "ESOPHAGUS": 6,
            "COLORECTAL": 5,
            "LIVER": 1,
            "PANCREAS": 1,
            "AMPULLA": 1,
        },
        True: {"STOMACH": 2, "ESOPHAGUS": 1, "COLORECTAL": 2},
    }
    assert _counts(rows, "histol") == {
        False: {
            "ADENOCARCINOMA": 12,
            "SQUAMOUS CELL CARCINOMA": 6,
            "NEUROENDOCRINE CARCINOMA": 1,
            "HEPATOCELLULAR CARCINOMA": 1,
        },
        True: {"ADENOCARCINOMA": 2, "NEUROENDOCRINE CARCINOMA": 3},
    }
    assert _counts(rows, "metsites", lambda v: "<=2" if v <= 2 else ">2") == {
        False: {"<=2": 13, ">2": 7},
        True: {"<=2": 3, ">2": 2},
    }
    assert _counts(rows, "regimen") == {
        False: {"PD-1": 6, "PD-L1": 12, "PD-L1 + CTLA-4": 2},
        True: {"PD-L1": 4, "PD-L1 + CTLA-4": 1},
    }
    assert _counts(rows, "mmr") == {False: {"dMMR": 8, "pMMR": 4}, True: {"pMMR": 2, "dMMR": 1}}
    assert _counts(rows, "pdl1_positive") == {False: {True: 5, False: 6}, True: {True: 1, False: 1}}


def _median_range(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return median, ordered[0], ordered[-1]


def _numeric_p_value(x: list[float], y: list[float]) -> float:
    """SPEC §5: Student's t when both groups pass Shapiro-Wilk at 0.05, else
    Mann-Whitney U with the normal approximation, tie correction and no
    continuity correction (as SPSS reports it)."""
    if stats.shapiro(x).pvalue >= 0.05 and stats.shapiro(y).pvalue >= 0.05:
        return float(stats.ttest_ind(x, y).pvalue)
    return float(
        stats.mannwhitneyu(
            x, y, alternative="two-sided", use_continuity=False, method="asymptotic"
        ).pvalue
    )


def test_table_1_ages_and_metastatic_sites(demo_warehouse: Path) -> None:
    rows = query_dicts(demo_warehouse, EVALUABLE)
    ages = {group: [float(r["age"]) for r in rows if r["hpd"] is group] for group in (False, True)}
    assert _median_range(ages[False] + ages[True]) == (54, 22, 77)
    assert _median_range(ages[False]) == (52, 22, 77)
    assert _median_range(ages[True]) == (63, 31, 65)
    assert round(_numeric_p_value(ages[False], ages[True]), 3) == 0.587
    sites = {
        group: [float(r["metsites"]) for r in rows if r["hpd"] is group] for group in (False, True)
    }
    assert round(_numeric_p_value(sites[False], sites[True]), 3) == 0.749

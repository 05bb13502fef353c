"""The data-quality gate (python/hpd/quality.py): Great Expectations suites
`exports` (on the loaded `raw` schema) and `marts` (on `analytics`).

The hand-made exports of tests/data/realworld carry two deliberate bad rows
(see test_realworld_exports.py): tr.csv row 84 has the unit "in" and row 41
measures a lesion a second time at the same visit. Every other test corrupts
a copy of those exports, or tampers with a copy of the warehouse built from
them, and checks that the right expectation fails, with the right severity
and a one-line message naming the file, the row and the column.
"""

from __future__ import annotations

import csv
import datetime
import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from conftest import REALWORLD, REPO, run_hpd
from hpd import quality
from hpd.errors import DataError
from hpd.loader import load_exports
from hpd.project import sdtm_domains

# The suites as committed in gx/, read before any test can rewrite them.
COMMITTED_SUITES = {
    name: json.loads((REPO / "gx" / "expectations" / f"{name}.json").read_text(encoding="utf-8"))
    for name in (quality.EXPORTS_SUITE, quality.MARTS_SUITE)
    if (REPO / "gx" / "expectations" / f"{name}.json").is_file()
}

BASELINE_WARNINGS = [
    "tr.csv, row 84, column TRSTRESU: unit 'in' is not mm, cm or blank (1 row)",
    "tr.csv, row 41, column TRLNKID: lesion 'T01' of subject 'NCT01000001-002' is measured "
    "2 times at VISITNUM 2.0 by test LDIAM (1 row)",
]

Rows = list[list[str]]


def copy_exports(tmp_path: Path) -> Path:
    folder = tmp_path / "exports"
    shutil.copytree(REALWORLD, folder)
    return folder


def rewrite_csv(path: Path, edit: Callable[[Rows], Rows]) -> None:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    rows = edit(rows)
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


def set_value(row_number: int, column: str, value: str) -> Callable[[Rows], Rows]:
    """Set one cell: `row_number` counts from 1 after the header, as the gate does."""

    def edit(rows: Rows) -> Rows:
        index = [name.upper() for name in rows[0]].index(column)
        rows[row_number][index] = value
        return rows

    return edit


@pytest.fixture(scope="module")
def gx_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project root holding a copy of the committed gx/, so that the
    validation results of these tests do not pile up in the repository's
    gx/uncommitted (one test uses the repository's own context)."""
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(REPO / "gx", root / "gx", ignore=shutil.ignore_patterns("uncommitted"))
    return root


@pytest.fixture()
def validate(gx_root: Path) -> Callable[[Path], quality.QualityResult]:
    def run(folder: Path) -> quality.QualityResult:
        with duckdb.connect() as con:
            load_exports(con, folder)
            return quality.validate_exports(con, project_root=gx_root)

    return run


Validate = Callable[[Path], quality.QualityResult]


def only_issue(result: quality.QualityResult, check: str) -> quality.Issue:
    issues = result.failed(check)
    assert len(issues) == 1, result.issues
    return issues[0]


# ---------------------------------------------------------------------------
# exports


def test_realworld_exports_pass_with_their_two_known_warnings() -> None:
    """In the repository's own gx/ context, which it reads without rewriting."""
    committed = {
        path: path.read_bytes()
        for path in (REPO / "gx").rglob("*")
        if path.is_file() and "uncommitted" not in path.parts
    }
    with duckdb.connect() as con:
        load_exports(con, REALWORLD)
        result = quality.validate_exports(con)
    assert {path: path.read_bytes() for path in committed} == committed
    # The results come from the checkpoint `exports` of the context.
    checkpoint = quality.get_context().checkpoints.get("exports")
    assert result.validation_results[0].meta["checkpoint_id"] == checkpoint.id
    assert result.suite == "exports"
    assert result.success
    assert result.blocking_failures == []
    assert result.warnings == BASELINE_WARNINGS
    assert result.evaluated == len(quality.EXPORT_CHECKS)
    assert len(result.validation_results) == 1
    assert result.validation_results[0].success is False  # the two warnings
    # Every profile row of the frame GX validated names its check.
    assert set(result.profile["check"]) == {check.id for check in quality.EXPORT_CHECKS}


def test_every_expectation_carries_severity_check_and_description(validate: Validate) -> None:
    result = validate(REALWORLD)
    outcomes = result.validation_results[0].results
    assert len(outcomes) == len(quality.EXPORT_CHECKS)
    by_id = {check.id: check for check in quality.EXPORT_CHECKS + quality.MART_CHECKS}
    for outcome in outcomes:
        meta = outcome.expectation_config.meta
        assert set(meta) == {"severity", "check", "description"}
        assert meta["severity"] == by_id[meta["check"]].severity
        assert meta["severity"] in {"blocking", "warning"} and meta["description"]
    assert {check.severity for check in quality.MART_CHECKS} == {"blocking", "warning"}


@pytest.mark.parametrize("suite", [quality.EXPORTS_SUITE, quality.MARTS_SUITE])
def test_committed_suites_match_the_code(suite: str) -> None:
    """gx/expectations/*.json as committed: the suites the code declares."""
    assert suite in COMMITTED_SUITES, "run the gate once and commit gx/"
    stored = COMMITTED_SUITES[suite]["expectations"]
    declared = [check.expectation() for check in quality.SUITES[suite]]
    assert sorted(e["meta"]["check"] for e in stored) == sorted(e.meta["check"] for e in declared)
    for expectation in declared:
        match = next(e for e in stored if e["meta"]["check"] == expectation.meta["check"])
        assert match["type"] == expectation.expectation_type
        assert match["meta"] == expectation.meta
        assert match["kwargs"]["column"] == expectation.column


def test_unit_in_inches(tmp_path: Path, validate: Validate) -> None:
    exports = copy_exports(tmp_path)
    rewrite_csv(exports / "tr.csv", set_value(1, "TRSTRESU", "in"))
    result = validate(exports)
    issue = only_issue(result, "unit_terms")
    assert issue.severity == "warning"
    assert (
        issue.message == "tr.csv, row 1, column TRSTRESU: unit 'in' is not mm, cm or blank (2 rows)"
    )
    assert result.success  # a warning does not block


@pytest.mark.parametrize(
    ("number", "unit", "shown"),
    [("900", "mm", "900 mm"), ("60", "cm", "60 cm (600 mm)"), ("-3", "mm", "-3 mm")],
)
def test_diameter_out_of_range(
    tmp_path: Path, validate: Validate, number: str, unit: str, shown: str
) -> None:
    exports = copy_exports(tmp_path)
    for column, value in (("TRSTRESN", number), ("TRORRES", number), ("TRSTRESU", unit)):
        rewrite_csv(exports / "tr.csv", set_value(5, column, value))
    result = validate(exports)
    issue = only_issue(result, "diameter_range")
    assert issue.severity == "warning"
    assert (
        issue.message
        == f"tr.csv, row 5, column TRSTRESN: diameter {shown} is outside 0-500 mm (1 row)"
    )


def test_date_before_1900(tmp_path: Path, validate: Validate) -> None:
    exports = copy_exports(tmp_path)
    rewrite_csv(exports / "ex.csv", set_value(2, "EXSTDTC", "1850-01-01"))
    result = validate(exports)
    issue = only_issue(result, "date_range")
    assert issue.severity == "warning"
    assert (
        issue.message == "ex.csv, row 2, column EXSTDTC: date '1850-01-01' is before 1900 (1 row)"
    )


def test_date_in_the_future(tmp_path: Path, validate: Validate) -> None:
    exports = copy_exports(tmp_path)
    future = (datetime.date.today() + datetime.timedelta(days=400)).isoformat()
    rewrite_csv(exports / "tr.csv", set_value(33, "TRDTC", future + "T10:00"))
    result = validate(exports)
    issue = only_issue(result, "date_range")
    assert issue.severity == "warning"
    assert issue.message.startswith(
        f"tr.csv, row 33, column TRDTC: date '{future}T10:00' is after today"
    )
    assert issue.message.endswith("(1 row)")
    assert result.failed("scan_after_death") == []  # subject NCT01000001-002 is alive


def test_unreadable_date(tmp_path: Path, validate: Validate) -> None:
    exports = copy_exports(tmp_path)
    rewrite_csv(exports / "tr.csv", set_value(3, "TRDTC", "2016-02-30"))
    result = validate(exports)
    issue = only_issue(result, "date_format")
    assert issue.severity == "warning"
    assert issue.message == (
        "tr.csv, row 3, column TRDTC: date '2016-02-30' is not an ISO 8601 date "
        "(YYYY-MM-DD[Thh:mm], YYYY-MM or YYYY) (1 row)"
    )


def test_scan_after_death(tmp_path: Path, validate: Validate) -> None:
    exports = copy_exports(tmp_path)
    # NCT01000001-001 died on 2017-06-01 (dm.csv DTHDTC).
    rewrite_csv(exports / "tr.csv", set_value(20, "TRDTC", "2017-07-01"))
    result = validate(exports)
    issue = only_issue(result, "scan_after_death")
    assert issue.severity == "warning"
    assert issue.message == (
        "tr.csv, row 20, column TRDTC: scan date '2017-07-01' is after the death of subject "
        "'NCT01000001-001' on 2017-06-01 (1 row)"
    )


@pytest.mark.parametrize(("scan", "flagged"), [("2017-06-20", False), ("2017-07-01", True)])
def test_scan_after_a_partial_date_of_death(
    tmp_path: Path, validate: Validate, scan: str, flagged: bool
) -> None:
    exports = copy_exports(tmp_path)
    rewrite_csv(exports / "dm.csv", set_value(1, "DTHDTC", "2017-06"))  # some day in June
    rewrite_csv(exports / "tr.csv", set_value(20, "TRDTC", scan))
    issues = validate(exports).failed("scan_after_death")
    assert [issue.message for issue in issues] == (
        [
            "tr.csv, row 20, column TRDTC: scan date '2017-07-01' is after the death of subject "
            "'NCT01000001-001' on 2017-06 (1 row)"
        ]
        if flagged
        else []
    )


def test_repeated_dm_subject_blocks(tmp_path: Path, validate: Validate) -> None:
    exports = copy_exports(tmp_path)
    rewrite_csv(exports / "dm.csv", lambda rows: [*rows, rows[1]])
    result = validate(exports)
    issue = only_issue(result, "dm_one_row_per_subject")
    assert issue.severity == "blocking"
    assert issue.message == (
        "dm.csv, row 8, column USUBJID: subject 'NCT01000001-001' appears more than once in DM "
        "(1 extra row)"
    )
    assert not result.success
    assert result.blocking_failures == [issue.message]
    with pytest.raises(DataError, match=re.escape(issue.message)):
        result.raise_for_blocking()


def test_subject_not_in_dm_blocks(tmp_path: Path, validate: Validate) -> None:
    exports = copy_exports(tmp_path)

    def add_orphan(rows: Rows) -> Rows:
        orphan = list(rows[1])
        orphan[[name.upper() for name in rows[0]].index("USUBJID")] = "NCT01000001-999"
        return [*rows, orphan]

    rewrite_csv(exports / "tr.csv", add_orphan)
    result = validate(exports)
    issue = only_issue(result, "subject_in_dm")
    assert issue.severity == "blocking"
    assert (
        issue.message
        == "tr.csv, row 88, column USUBJID: subject 'NCT01000001-999' is not in DM (1 row)"
    )
    assert not result.success


def test_lesion_not_in_tu(tmp_path: Path, validate: Validate) -> None:
    exports = copy_exports(tmp_path)
    rewrite_csv(exports / "tr.csv", set_value(1, "TRLNKID", "T99"))
    result = validate(exports)
    issue = only_issue(result, "lesion_in_tu")
    assert issue.severity == "warning"
    assert issue.message == (
        "tr.csv, row 1, column TRLNKID: lesion 'T99' of subject 'NCT01000001-001' is not "
        "identified in TU (1 row)"
    )


def test_lesion_of_another_reader_is_not_identified(tmp_path: Path, validate: Validate) -> None:
    exports = copy_exports(tmp_path)
    # Row 2 is RADIOLOGIST 1's read of R1-T01; T01 is the investigator's id (SPEC rule 5).
    rewrite_csv(exports / "tr.csv", set_value(2, "TRLNKID", "T01"))
    issue = only_issue(validate(exports), "lesion_in_tu")
    assert issue.message == (
        "tr.csv, row 2, column TRLNKID: lesion 'T01' of subject 'NCT01000001-001', reader "
        "INDEPENDENT ASSESSOR: RADIOLOGIST 1 is not identified in TU (1 row)"
    )


def test_duplicated_measurement(tmp_path: Path, validate: Validate) -> None:
    exports = copy_exports(tmp_path)
    rewrite_csv(exports / "tr.csv", lambda rows: [*rows, rows[1]])
    result = validate(exports)
    issue = only_issue(result, "measured_once")
    assert issue.severity == "warning"
    # Row 1 and its copy (row 88) share a date: staging keeps the last in the
    # file and rejects row 1; row 41 is the known duplicate of the exports.
    assert issue.message == (
        "tr.csv, row 1, column TRLNKID: lesion 'T01' of subject 'NCT01000001-001' is measured "
        "2 times at VISITNUM 1.0 by test LDIAM (2 rows)"
    )


def test_controlled_terminology(tmp_path: Path, validate: Validate) -> None:
    exports = copy_exports(tmp_path)
    rewrite_csv(exports / "tu.csv", set_value(3, "TUORRES", "MEASURABLE"))
    rewrite_csv(exports / "tr.csv", set_value(7, "TRTESTCD", "AREA"))
    rewrite_csv(exports / "tr.csv", set_value(9, "TREVAL", "RADIOLOGIST"))
    result = validate(exports)
    assert only_issue(result, "lesion_class_terms").message == (
        "tu.csv, row 3, column TUORRES: lesion class 'MEASURABLE' is not TARGET, NON-TARGET "
        "or NEW (1 row)"
    )
    assert only_issue(result, "test_code_terms").message == (
        "tr.csv, row 7, column TRTESTCD: test code 'AREA' is not one of LDIAM, LPERP, "
        "TUMSTATE, DIAMETER, SUMDIAM, VOLUME (1 row)"
    )
    assert only_issue(result, "evaluator_terms").message == (
        "tr.csv, row 9, column TREVAL: evaluator 'RADIOLOGIST' is not INVESTIGATOR, "
        "INDEPENDENT ASSESSOR or blank (1 row)"
    )
    assert {issue.severity for issue in result.issues} == {"warning"}


def test_blank_required_value(tmp_path: Path, validate: Validate) -> None:
    exports = copy_exports(tmp_path)
    rewrite_csv(exports / "ex.csv", set_value(4, "EXTRT", " "))
    issue = only_issue(validate(exports), "required_values")
    assert issue.severity == "warning"
    assert issue.message == "ex.csv, row 4, column EXTRT: required value is blank (1 row)"


def test_missing_required_column_is_recorded(gx_root: Path) -> None:
    with duckdb.connect() as con:
        load_exports(con, REALWORLD)
        # raw.tr is a view over the rows as loaded; redefine it without TRDTC.
        con.execute(
            "create or replace view raw.tr as select * exclude (trdtc), 'tr.csv' as _file_name, "
            "rowid + 1 as _row_number from raw.tr__rows"
        )
        result = quality.validate_exports(con, project_root=gx_root)
    issue = only_issue(result, "required_columns")
    assert issue.severity == "blocking"
    assert issue.message == "tr.csv, column TRDTC: required column is missing"
    assert not result.success


def test_the_context_is_created_on_a_fresh_clone(tmp_path: Path) -> None:
    """A clone has gx/ without gx/uncommitted; a bare folder has no gx/ at all."""
    clone = tmp_path / "clone"
    shutil.copytree(REPO / "gx", clone / "gx", ignore=shutil.ignore_patterns("uncommitted"))
    bare = tmp_path / "bare"
    bare.mkdir()
    for root in (clone, bare):
        with duckdb.connect() as con:
            load_exports(con, REALWORLD)
            result = quality.validate_exports(con, project_root=root)
        assert result.warnings == BASELINE_WARNINGS
        assert (root / "gx" / "great_expectations.yml").is_file()
        assert (root / "gx" / "expectations" / "exports.json").is_file()
        assert {p.stem for p in (root / "gx" / "checkpoints").glob("*.json")} >= {
            "exports",
            "marts",
        }
    # The committed context keeps no validation history: a nightly refresh
    # must not grow the repository's folder without bound.
    assert not list((clone / "gx").glob("uncommitted/validations/**/*.json"))
    # The clone's committed configuration was read, not rewritten.
    for name in ("great_expectations.yml", "expectations/exports.json", "checkpoints/exports.json"):
        assert (clone / "gx" / name).read_bytes() == (REPO / "gx" / name).read_bytes(), name


# ---------------------------------------------------------------------------
# marts


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("quality")
    path = folder / "warehouse.duckdb"
    result = run_hpd(
        "run", "--exports", REALWORLD, "--warehouse", path, "--reports", folder / "reports"
    )
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture()
def tampered(
    warehouse: Path, tmp_path: Path, gx_root: Path
) -> Iterator[Callable[[str], quality.QualityResult]]:
    """Run SQL on a copy of the warehouse, then the marts suite on it. The
    copy's marts are plain tables: the contracts' constraints would refuse
    the tampering; the suite is the second line behind them, and it must
    catch what they would."""
    copy = tmp_path / "tampered.duckdb"
    shutil.copy(warehouse, copy)
    with duckdb.connect(str(copy)) as con:
        marts = con.execute(
            "select table_name from duckdb_tables() where schema_name = 'analytics'"
        ).fetchall()
        for (mart,) in marts:
            con.execute(
                f"create or replace table analytics.{mart} as select * from analytics.{mart}"
            )

    def run(sql: str) -> quality.QualityResult:
        with duckdb.connect(str(copy)) as con:
            con.execute(sql)
            return quality.validate_marts(con, project_root=gx_root)

    yield run


def test_realworld_marts_pass(warehouse: Path, gx_root: Path) -> None:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        result = quality.validate_marts(con, project_root=gx_root)
    assert result.suite == "marts"
    assert result.success, result.issues
    assert result.issues == []
    assert result.evaluated == len(quality.MART_CHECKS)
    assert result.validation_results[0].success


def test_export_warnings_name_the_rows_staging_rejects(warehouse: Path, gx_root: Path) -> None:
    """The warehouse keeps its `raw` schema: the gate run on it names the very
    rows that analytics.rejected_rows lists."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        result = quality.validate_exports(con, project_root=gx_root)
        rejected = con.execute(
            "select file_name, row_number, coalesce(column_name, 'TRLNKID'), reason "
            "from analytics.rejected_rows order by row_number"
        ).fetchall()
    assert result.warnings == BASELINE_WARNINGS
    assert rejected == [
        ("tr.csv", 41, "TRLNKID", "duplicate"),
        ("tr.csv", 84, "TRSTRESU", "invalid_unit"),
    ]
    for (file_name, row, column, _), check in zip(
        rejected, ["measured_once", "unit_terms"], strict=True
    ):
        assert only_issue(result, check).message.startswith(
            f"{file_name}, row {row}, column {column}:"
        )


def test_deleted_kinetics_row(tampered: Callable[[str], quality.QualityResult]) -> None:
    result = tampered("delete from analytics.tumor_kinetics where usubjid = 'NCT01000001-002'")
    assert not result.success
    total = only_issue(result, "attrition_total")
    assert total.severity == "blocking"
    assert total.message == (
        "analytics.cohort_attrition, column n: n sums to 7 and the first n_remaining is 7, "
        "but analytics.tumor_kinetics has 6 rows"
    )
    assert only_issue(result, "tumor_kinetics_covers_treated").message == (
        "analytics.tumor_kinetics, usubjid 'NCT01000001-002', column usubjid: treated subject "
        "is missing from analytics.tumor_kinetics (present in analytics.survival, "
        "analytics.hyperprogression) (1 subject)"
    )
    assert result.failed("attrition_steps")
    assert result.failed("hpd_classification_grain")


def test_wrong_tgkr(tampered: Callable[[str], quality.QualityResult]) -> None:
    result = tampered(
        "update analytics.tumor_kinetics set tgkr = tgkr * 1.5 where usubjid = 'NCT01000001-001'"
    )
    issue = only_issue(result, "tgkr_consistent")
    assert issue.severity == "blocking"
    assert re.fullmatch(
        r"analytics\.tumor_kinetics, usubjid 'NCT01000001-001', column tgkr: tgkr [0-9.]+ is "
        r"not tgk_post / tgk_pre = [0-9.]+ \(1 row\)",
        issue.message,
    ), issue.message
    assert [i.check for i in result.issues] == ["tgkr_consistent"]


def test_tgkr_within_the_relative_tolerance(
    tampered: Callable[[str], quality.QualityResult],
) -> None:
    result = tampered(
        "update analytics.tumor_kinetics set tgkr = tgkr * (1 + 1e-12) "
        "where usubjid = 'NCT01000001-001'"
    )
    assert result.success and result.issues == []


def test_duplicate_kinetics_row(tampered: Callable[[str], quality.QualityResult]) -> None:
    result = tampered(
        "insert into analytics.tumor_kinetics "
        "select * from analytics.tumor_kinetics where usubjid = 'CTR20180001-002'"
    )
    issue = only_issue(result, "tumor_kinetics_one_row_per_subject")
    assert issue.severity == "blocking"
    assert issue.message == (
        "analytics.tumor_kinetics, usubjid 'CTR20180001-002', column usubjid: subject has 2 rows "
        "(1 extra row)"
    )
    assert result.failed("attrition_total")


def test_duplicate_assessment_row(tampered: Callable[[str], quality.QualityResult]) -> None:
    result = tampered(
        "insert into analytics.tumor_assessments select * from analytics.tumor_assessments "
        "where usubjid = 'CTR20180001-004' and assessment_order = 2"
    )
    grain = only_issue(result, "tumor_assessments_grain")
    assert grain.severity == "blocking"
    assert grain.message == (
        "analytics.tumor_assessments, usubjid 'CTR20180001-004', column assessment_order: "
        "assessment_order 2 where expected 3 (1 row)"
    )
    assert only_issue(result, "tumor_assessments_natural_key").severity == "warning"
    assert result.failed("tumor_assessments_key_roles")  # two first evaluations


@pytest.mark.parametrize(
    ("sql", "check", "message"),
    [
        (
            "update analytics.tumor_kinetics set tgkr = 1.0 where usubjid = 'CTR20180001-003'",
            "kinetics_exactly_for_evaluable",
            "analytics.tumor_kinetics, usubjid 'CTR20180001-003', column tgkr: tgkr 1.0 does not "
            "fit evaluability incomplete_measurements",
        ),
        (
            "update analytics.tumor_kinetics set hpd = false where usubjid = 'CTR20180001-004'",
            "hpd_null_exactly_when_not_evaluable",
            "analytics.tumor_kinetics, usubjid 'CTR20180001-004', column hpd: hpd is false with "
            "evaluability no_baseline_scan (1 row)",
        ),
        (
            "update analytics.tumor_kinetics set delta_tgr = delta_tgr + 1 "
            "where usubjid = 'NCT01000001-002'",
            "delta_tgr_consistent",
            "analytics.tumor_kinetics, usubjid 'NCT01000001-002', column delta_tgr: delta_tgr",
        ),
        (
            "update analytics.tumor_kinetics set tgr_ratio = 2 * tgr_ratio "
            "where usubjid = 'NCT01000001-001'",
            "tgr_ratio_consistent",
            "analytics.tumor_kinetics, usubjid 'NCT01000001-001', column tgr_ratio: tgr_ratio",
        ),
        (
            "delete from analytics.hpd_classification "
            "where usubjid = 'NCT01000001-003' and definition_id = 'kim_2019'",
            "hpd_classification_grain",
            "analytics.hpd_classification, usubjid 'NCT01000001-003', column definition_id: "
            "6 rows, expected 7 (one per definition); wrong: kim_2019 (1 subject)",
        ),
        (
            "delete from analytics.rejected_rows where reason = 'duplicate'",
            "input_reconciliation",
            "analytics.input_reconciliation, domain tr, column rows_read: 87 rows read, 85 used "
            "+ 2 rejected; analytics.rejected_rows lists 1; raw.tr has 87 rows",
        ),
        (
            "update analytics.cohort_attrition set n = n + 1 where step = 2",
            "attrition_steps",
            "analytics.cohort_attrition, step 2, column n: no_first_evaluation: n 2, "
            "n_remaining 6, expected no_first_evaluation: n 1, n_remaining 6 (1 step)",
        ),
        (
            "update analytics.tumor_kinetics set evaluability = 'evaluable?' "
            "where usubjid = 'CTR20180001-004'",
            "evaluability_terms",
            "analytics.tumor_kinetics, usubjid 'CTR20180001-004', column evaluability: "
            "evaluability 'evaluable?' is not a status of SPEC §2 (1 row)",
        ),
        (
            "update analytics.hyperprogression set hpd_kas_2020 = true "
            "where usubjid = 'NCT01000001-002'",
            "hpd_consistent",
            "analytics.hyperprogression, usubjid 'NCT01000001-002', column hpd_kas_2020: true, "
            "but analytics.hpd_classification says false (1 verdict)",
        ),
        (
            "update analytics.rejected_rows set reason = null where row_number = 84",
            "rejected_rows_located",
            "analytics.rejected_rows, domain tr, file tr.csv, row 84, column reason: rejected "
            "row (null) is not located or without reason (1 row)",
        ),
    ],
)
def test_tampered_marts_fail_the_right_check(
    tampered: Callable[[str], quality.QualityResult], sql: str, check: str, message: str
) -> None:
    result = tampered(sql)
    issue = only_issue(result, check)
    assert issue.severity == "blocking"
    assert issue.message.startswith(message), issue.message
    assert issue.message in result.blocking_failures
    assert not result.success


def test_a_check_that_cannot_run_fails(tampered: Callable[[str], quality.QualityResult]) -> None:
    result = tampered("drop table analytics.input_reconciliation")
    issue = only_issue(result, "input_reconciliation")
    assert issue.severity == "blocking"
    assert issue.message.startswith("check input_reconciliation could not run: Catalog Error")
    assert [i.check for i in result.issues] == ["input_reconciliation"]


def test_no_evaluable_subject_is_a_warning(
    tampered: Callable[[str], quality.QualityResult],
) -> None:
    result = tampered(
        "update analytics.tumor_kinetics set evaluability = 'incomplete_measurements', "
        "tgkr = null, hpd = null where evaluability = 'evaluable'"
    )
    issue = only_issue(result, "evaluable_subjects")
    assert issue.severity == "warning"
    assert issue.message == (
        "analytics.tumor_kinetics, column evaluability: no subject is evaluable "
        "(7 treated subjects)"
    )


# ---------------------------------------------------------------------------
# Data Docs


def test_data_docs(warehouse: Path, tmp_path: Path, gx_root: Path, validate: Validate) -> None:
    exports = copy_exports(tmp_path)
    rewrite_csv(exports / "dm.csv", lambda rows: [*rows, rows[1]])
    exports_result = validate(exports)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        marts_result = quality.validate_marts(con, project_root=gx_root)
    reports = tmp_path / "reports"
    (reports / "data_docs").mkdir(parents=True)
    (reports / "data_docs" / "stale.html").write_text("from an earlier refresh")

    index = quality.build_data_docs([exports_result, marts_result], reports)

    assert index == (reports / "data_docs" / "index.html").resolve()
    html = index.read_text(encoding="utf-8")
    assert "exports" in html and "marts" in html
    assert not (reports / "data_docs" / "stale.html").exists()
    # Static pages with relative links: every linked page exists on disk.
    links = set(re.findall(r"(?:validations|expectations)/[^\"'\s]+?\.html", html))
    assert {link.split("/")[0] for link in links} == {"validations", "expectations"}
    for link in links:
        assert (index.parent / link).is_file(), link
    pages = list((index.parent / "validations").rglob("*.html"))
    assert len(pages) == 2
    exports_page = next(page for page in pages if "exports" in page.parts)
    text = exports_page.read_text(encoding="utf-8")
    # The failed expectation shows its one-line message ...
    assert "BLOCKING: dm.csv, row 8, column USUBJID: subject" in text
    # ... and so does the static summary at the top of the index, with links that
    # work without the CDN-loaded table of GX's index.
    summary = html[html.index('id="hpd-quality-summary"') :]
    summary = summary[: summary.index("</div>")]
    assert "dm.csv, row 8, column USUBJID: subject &#x27;NCT01000001-001&#x27;" in summary
    summary_links = re.findall(r'href="([^"]+)"', summary)
    assert len(summary_links) == 2
    for link in summary_links:
        assert (index.parent / link).is_file(), link
    assert str(REPO) not in html


# ---------------------------------------------------------------------------
# Speed on a large export


def synthetic_raw(con: duckdb.DuckDBPyConnection, tr_rows: int) -> None:
    """A `raw` schema as the loader makes it: `tr_rows` TR rows, 100 per subject
    (5 target lesions x 20 visits), generated in DuckDB."""
    specs = {spec.name: spec for spec in sdtm_domains()}
    subjects = max(tr_rows // 100, 1)
    sources = {
        "dm": f"""select i, 'ST1' as studyid, 'S' || i as usubjid, 'M' as sex, '60' as age,
            '2018-01-01' as rfxstdtc, '2019-06-01' as rfpendtc from range({subjects}) t(i)""",
        "ex": f"""select i, 'ST1' as studyid, 'S' || i as usubjid, 'NIVOLUMAB' as extrt,
            '2018-01-01' as exstdtc from range({subjects}) t(i)""",
        "tu": f"""select i, 'ST1' as studyid, 'S' || (i // 5) as usubjid,
            'T0' || (i % 5) as tulnkid, 'TARGET' as tuorres, 'TARGET' as tustresc, 'LIVER' as tuloc,
            'INVESTIGATOR' as tueval, '1' as visitnum, 'SCREENING' as visit,
            '2017-12-01' as tudtc from range({subjects * 5}) t(i)""",
        "tr": f"""select i, 'ST1' as studyid, 'S' || (i % {subjects}) as usubjid,
            'T0' || ((i // {subjects}) % 5) as trlnkid, 'LDIAM' as trtestcd,
            strftime(date '2017-12-01' + cast(i // ({subjects} * 5) * 56 as integer), '%Y-%m-%d')
                as trdtc,
            cast(10 + i % 50 as varchar) as trstresn, 'mm' as trstresu,
            cast(10 + i % 50 as varchar) as trorres, 'mm' as trorresu,
            'INVESTIGATOR' as treval, cast(i // ({subjects} * 5) as varchar) as visitnum,
            'VISIT ' || (i // ({subjects} * 5)) as visit from range({tr_rows}) t(i)""",
    }
    con.execute("create schema raw")
    for name, spec in specs.items():
        source = sources.get(name, "select 0 as i limit 0")
        given = set(re.findall(r"as (\w+)", source))
        columns = ", ".join(
            f"cast({c if c in given else 'null'} as varchar) as {c}" for c in spec.columns
        )
        con.execute(
            f"create table raw.{name} as select {columns}, '{name}.csv' as _file_name, "
            f"cast(i + 1 as bigint) as _row_number from ({source})"
        )


def test_validate_exports_on_a_million_tr_rows(
    gx_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with duckdb.connect() as con:
        synthetic_raw(con, 1_000_000)
        assert con.execute("select count(*) from raw.tr").fetchone() == (1_000_000,)
        quality.validate_exports(con, project_root=gx_root)  # GX imported, context read
        started = time.monotonic()
        result = quality.validate_exports(con, project_root=gx_root)
        seconds = time.monotonic() - started
    assert result.issues == []
    assert result.evaluated == len(quality.EXPORT_CHECKS)
    assert len(result.profile) < 200  # GX sees profiles, not the million rows
    with capsys.disabled():
        print(f"\nvalidate_exports on 1,000,000 TR rows: {seconds:.2f} s")

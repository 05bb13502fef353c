"""The analyst contract of SPEC §4: every mart has an enforced dbt contract
whose columns (names, order, types) are those of the built warehouse, every
mart and column is described (shared meanings once, as docs blocks), the
consumers are declared as exposures, and a change of a column's type fails
the build instead of reaching the analysts."""

from __future__ import annotations

import json
import re
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb
import pytest

from conftest import REPO, dbt, query

MARTS_DIR = REPO / "models" / "marts"
DOCS_FILE = REPO / "models" / "docs.md"

# Type names valid on DuckDB and PostgreSQL alike, and what DuckDB's
# information_schema calls them.
PORTABLE_TYPES = {
    "varchar": "VARCHAR",
    "bigint": "BIGINT",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "double precision": "DOUBLE",
}


def words(text: str) -> set[str]:
    return set(text.split())


# Columns of the same name that mean different things in different marts.
HOMONYMS = {
    # tumor_kinetics.hpd is the primary verdict of a subject;
    # hpd_definition_summary.hpd counts the hyperprogressors of a definition.
    "hpd",
}

# The shared meanings the docs blocks must cover (the list).
REQUIRED_DOC_BLOCKS = words(
    """
    tgk tgk_pre tgk_post tgkr tgr tgr_pre tgr_post tgr_ratio delta_tgr pp pp_pre pp_post ttf
    irrecist_burden target_sum nadir pseudoprogression
    response_cr response_pr response_sd response_pd response_ne
    evaluability attrition evaluability_no_baseline_scan evaluability_no_first_evaluation
    evaluability_no_pre_baseline_scan evaluability_incomplete_measurements evaluability_evaluable
    reason_missing_value reason_invalid_date reason_invalid_number reason_invalid_unit
    reason_negative_result reason_unknown_lesion reason_duplicate
    not_judged_reason not_judged_not_evaluable not_judged_tgr_undefined
    not_judged_no_first_evaluation
    definition_tgkr definition_champiat_2017 definition_ferrara_2018 definition_kas_2020
    definition_kato_2017 definition_lo_russo_2019 definition_kim_2019
    role role_pre_baseline role_baseline role_first_evaluation role_follow_up role_other
    """
)

EXPOSURES = {
    "hpd_report": (
        "analysis",
        words(
            """
            cohort_attrition tumor_kinetics hpd_classification hpd_definitions
            hpd_definition_summary hpd_definition_agreement survival subject_characteristics
            tumor_assessments
            """
        ),
    ),
    "hpd_dashboard": (
        "dashboard",
        words(
            """
            hyperprogression tumor_kinetics cohort_attrition hpd_definition_summary
            tumor_assessments
            """
        ),
    ),
}

CONTRACT_ERROR = "This model has an enforced contract that failed"


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The manifest of the project as it is (`dbt parse` needs no database)."""
    work = tmp_path_factory.mktemp("manifest")
    result = dbt(["parse"], REPO, work)
    assert result.returncode == 0, result.stdout + result.stderr
    with (work / "target" / "manifest.json").open(encoding="utf-8") as handle:
        return json.load(handle)


def marts(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and Path(node["original_file_path"]).parent.as_posix() == "models/marts"
    }


def test_every_mart_is_parsed(manifest: dict[str, Any]) -> None:
    on_disk = {path.stem for path in MARTS_DIR.glob("*.sql")}
    assert on_disk, "no marts found"
    assert set(marts(manifest)) == on_disk


def test_every_mart_has_an_enforced_contract_and_a_description(manifest: dict[str, Any]) -> None:
    problems = []
    for name, node in sorted(marts(manifest).items()):
        if not node["config"]["contract"]["enforced"]:
            problems.append(f"{name}: contract not enforced")
        if not node["description"].strip():
            problems.append(f"{name}: no description")
        if node["config"]["materialized"] != "table":
            problems.append(f"{name}: materialized as {node['config']['materialized']}")
    assert not problems, "\n".join(problems)


def test_contract_columns_are_the_warehouse_columns(
    manifest: dict[str, Any], demo_warehouse: Path
) -> None:
    """Same names in the same order, a portable type equal to the built one,
    and a description, for every column of every mart."""
    problems = []
    for name, node in sorted(marts(manifest).items()):
        built = query(
            demo_warehouse,
            """
            select column_name, data_type from information_schema.columns
            where table_schema = 'analytics' and table_name = ?
            order by ordinal_position
            """,
            [name],
        )
        if not built:
            problems.append(f"{name}: not in the demo warehouse")
            continue
        declared = list(node["columns"].values())
        if [c["name"] for c in declared] != [column for column, _ in built]:
            problems.append(
                f"{name}: yml columns {[c['name'] for c in declared]} "
                f"!= warehouse columns {[column for column, _ in built]}"
            )
        built_types = dict(built)
        for column in declared:
            where = f"{name}.{column['name']}"
            if not (column.get("description") or "").strip():
                problems.append(f"{where}: no description")
            data_type = column.get("data_type")
            if data_type not in PORTABLE_TYPES:
                problems.append(
                    f"{where}: data_type {data_type!r} is not one of {sorted(PORTABLE_TYPES)}"
                )
            elif (
                column["name"] in built_types
                and PORTABLE_TYPES[data_type] != built_types[column["name"]]
            ):
                problems.append(
                    f"{where}: data_type {data_type} but built as {built_types[column['name']]}"
                )
    assert not problems, "\n".join(problems)


def test_descriptions_are_rendered(manifest: dict[str, Any]) -> None:
    """Every doc() resolves: no Jinja is left in a description."""
    leftovers = [
        f"{name}.{column}"
        for name, node in marts(manifest).items()
        for column, text in [("", node["description"])]
        + [(c, spec["description"]) for c, spec in node["columns"].items()]
        if "{{" in text or "{%" in text
    ]
    assert not leftovers


def _doc_blocks(node_or_column: dict[str, Any]) -> set[str]:
    return {block.split(".")[-1] for block in node_or_column.get("doc_blocks", [])}


def test_docs_blocks_cover_the_shared_meanings(manifest: dict[str, Any]) -> None:
    text = DOCS_FILE.read_text(encoding="utf-8")
    written = re.findall(r"{%\s*docs\s+(\w+)\s*%}", text)
    assert len(written) == len(set(written)), "a docs block is written twice"
    parsed = {doc["name"] for doc in manifest["docs"].values() if doc["package_name"] == "hpd"}
    assert set(written) <= parsed
    assert set(written) >= REQUIRED_DOC_BLOCKS, sorted(REQUIRED_DOC_BLOCKS - set(written))
    empty = [
        doc["name"]
        for doc in manifest["docs"].values()
        if doc["package_name"] == "hpd" and not doc["block_contents"].strip()
    ]
    assert not empty
    used: set[str] = set()
    for node in marts(manifest).values():
        used |= _doc_blocks(node)
        for column in node["columns"].values():
            used |= _doc_blocks(column)
    assert set(written) <= used, f"docs blocks no mart uses: {sorted(set(written) - used)}"


def test_a_column_shared_by_marts_uses_the_same_docs_blocks(manifest: dict[str, Any]) -> None:
    blocks_by_column: dict[str, dict[str, frozenset[str]]] = defaultdict(dict)
    for name, node in marts(manifest).items():
        for column, spec in node["columns"].items():
            blocks_by_column[column][name] = frozenset(_doc_blocks(spec))
    shared = {
        column: by_mart
        for column, by_mart in blocks_by_column.items()
        if len(by_mart) > 1 and column not in HOMONYMS
    }
    # The kinetics that tumor_kinetics and hyperprogression both carry, at least.
    assert {"tgkr", "tgr_ratio", "delta_tgr", "pp_pre", "ttf_months", "evaluability"} <= set(shared)
    problems = [
        f"{column}: {dict(sorted((m, sorted(b)) for m, b in by_mart.items()))}"
        for column, by_mart in sorted(shared.items())
        if len(set(by_mart.values())) > 1 or not any(by_mart.values())
    ]
    assert not problems, "\n".join(problems)


def test_exposures_declare_what_the_report_and_the_dashboard_read(manifest: dict[str, Any]) -> None:
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    assert set(EXPOSURES) <= set(exposures)
    for name, (kind, models) in EXPOSURES.items():
        exposure = exposures[name]
        assert exposure["type"] == kind
        assert exposure["owner"]["name"] or exposure["owner"]["email"]
        assert exposure["description"].strip()
        assert Path(exposure["original_file_path"]) == Path("models/marts/_exposures.yml")
        assert set(exposure["depends_on"]["nodes"]) == {f"model.hpd.{m}" for m in models}
    report = exposures["hpd_report"]
    assert report["url"] == "build/reports/report.html"


def copy_project(destination: Path) -> Path:
    """The dbt project alone (no warehouse, no target, no Python)."""
    destination.mkdir(parents=True)
    for file in ("dbt_project.yml", "profiles.yml"):
        shutil.copy2(REPO / file, destination / file)
    for folder in ("models", "macros", "seeds", "analyses", "tests/dbt"):
        shutil.copytree(REPO / folder, destination / folder)
    return destination


def recast_column(project: Path, model: str, column: str, data_type: str) -> None:
    """Change the type of one output column, leaving the model's SQL as it is:
    the model becomes `select * replace (cast(column as type) as column) from
    (the model)`, so the columns keep their names and order."""
    path = project / "models" / "marts" / f"{model}.sql"
    original = path.read_text(encoding="utf-8")
    path.write_text(
        f"with original_model as (\n{original}\n)\n"
        f"select * replace (cast({column} as {data_type}) as {column}) from original_model\n",
        encoding="utf-8",
    )


# `buildable`: dbt's default (eager) indirect selection would also run the
# tests of unselected marts that touch a selected ancestor (e.g. the
# relationships of tumor_assessments to int_subjects), on tables this fresh
# warehouse does not have.
BUILD = ["build", "--exclude-resource-type", "unit_test", "--indirect-selection", "buildable"]


@pytest.mark.parametrize(
    ("model", "column", "data_type"),
    [
        ("cohort_attrition", "n", "varchar"),
        ("tumor_kinetics", "tgkr", "varchar"),
        ("hpd_classification", "is_hpd", "integer"),
    ],
)
def test_the_contract_fails_the_build_when_a_type_changes(
    tmp_path: Path, model: str, column: str, data_type: str
) -> None:
    project = copy_project(tmp_path / "project")
    recast_column(project, model, column, data_type)
    result = dbt([*BUILD, "--select", f"+{model}"], project, tmp_path / "work")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert CONTRACT_ERROR in output, output
    assert "data type mismatch" in output, output
    assert re.search(rf"\|\s*{column}\s*\|", output), output  # the mismatch names the column


def test_the_unchanged_project_passes_the_same_build(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    for model in ("cohort_attrition", "tumor_kinetics", "hpd_classification"):
        result = dbt([*BUILD, "--select", f"+{model}"], project, tmp_path / f"work_{model}")
        assert result.returncode == 0, result.stdout + result.stderr


def test_row_rules_are_constraints_of_every_mart(manifest: dict[str, Any]) -> None:
    """The marts' row-level rules are enforced contract constraints: every
    mart has some, and a named rule keeps its name."""
    for name, node in marts(manifest).items():
        column_rules = [c for col in node["columns"].values() for c in col.get("constraints", [])]
        assert column_rules or node.get("constraints"), name
        for constraint in node.get("constraints", []):
            assert constraint["type"] == "check", (name, constraint)
            assert constraint["name"].startswith(name + "_"), (name, constraint)
            assert constraint["expression"].strip(), (name, constraint)


@pytest.mark.parametrize(
    ("mart", "change", "rule"),
    [
        # A formula of SPEC §2 broken: TGK_pre off by one mm/month.
        ("tumor_kinetics", "tgk_pre = tgk_pre + 1", "tgk_pre"),
        # An evaluability code that is not one of the five.
        ("tumor_kinetics", "evaluability = 'maybe'", "evaluability IN"),
        # A key column left empty.
        ("scan_intervals", "usubjid = null", "NOT NULL"),
    ],
)
def test_the_built_marts_refuse_rows_that_break_a_rule(
    demo_warehouse: Path, tmp_path: Path, mart: str, change: str, rule: str
) -> None:
    """The constraints live in the built warehouse: a row that breaks one is
    refused by the database, naming the rule."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(demo_warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        where = "where evaluability = 'evaluable'" if mart == "tumor_kinetics" else ""
        con.execute(f"create temp table broken as select * from analytics.{mart} {where} limit 1")
        assert con.execute("select count(*) from broken").fetchone() == (1,)
        con.execute(f"update broken set {change}")
        with pytest.raises(duckdb.ConstraintException) as refused:
            con.execute(f"insert into analytics.{mart} select * from broken")
    assert rule.lower() in str(refused.value).lower(), str(refused.value)


def test_grain_tests_find_duplicates_even_in_a_null_key_part(
    demo_warehouse: Path, tmp_path: Path
) -> None:
    """unique_combination_of_columns (on DuckDB: grouped by a hash first, then
    exactly) fails on a repeated row, and on two rows equal but for a key part
    that is null in both; the others still pass."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copyfile(demo_warehouse, work / "wh.duckdb")
    with duckdb.connect(str(work / "wh.duckdb")) as con:
        con.execute(
            "insert into intermediate.int_tu_lesions "
            "select * from intermediate.int_tu_lesions limit 1"
        )
        for _ in range(2):
            con.execute(
                "insert into intermediate.int_lesion_results "
                "select * replace (cast(null as varchar) as lesion_id) "
                "from intermediate.int_lesion_results order by usubjid, assessment_key limit 1"
            )
    result = dbt(["test", "--select", "test_name:unique_combination_of_columns"], REPO, work)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    failing = set(re.findall(r"FAIL \d+ (\w+)", output))
    assert failing == {
        "int_tu_lesions_one_row_per_lesion_and_reader",
        "int_lesion_results_one_row_per_lesion_test_and_assessment",
    }, output
    assert re.search(r"PASS=\d+", output), output

"""The synthetic cohort generator (python/hpd/synth.py).

It must be deterministic, write the same rows as CSV and Parquet, follow the
SDTM contract of dbt_project.yml, pass the exports quality suite, and make
the warehouse find the evaluability statuses and the hyperprogressors it
designed, in the shares it promises.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import duckdb
import pytest

from conftest import query, run_hpd
from hpd import synth
from hpd.loader import load_exports
from hpd.project import sdtm_domains

SUBJECTS = 2000  # for the warehouse runs
SMALL = 300  # for the file-level tests
SEED = 20240611

# Absolute tolerance on each share: about three binomial standard deviations
# for 2,000 subjects (~1,960 treated, ~980 evaluable).
STATUS_TOLERANCE = 0.03
HPD_TOLERANCE = 0.03
# A pre-baseline to baseline change below this (mm) is floating-point noise of
# summing identical diameters, not growth (diameters have 0.1 mm resolution).
FLOAT_NOISE_MM = 1e-6


def file_digests(folder: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.iterdir())
        if path.is_file()
    }


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> synth.SynthSummary:
    """2,000 synthetic subjects as CSV exports."""
    return synth.generate(SUBJECTS, tmp_path_factory.mktemp("synth") / "exports", seed=SEED)


@pytest.fixture(scope="module")
def warehouse(cohort: synth.SynthSummary, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The warehouse built by `hpd run` from the synthetic exports."""
    folder = tmp_path_factory.mktemp("synth_warehouse")
    result = run_hpd(
        "run",
        "--exports",
        cohort.out_dir,
        "--warehouse",
        folder / "warehouse.duckdb",
        "--reports",
        folder / "reports",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return folder / "warehouse.duckdb"


# ---------------------------------------------------------------------------
# Files


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path: Path) -> None:
    # Different thread counts and chunk sizes must not change a byte.
    first = synth.generate(SMALL, tmp_path / "a", seed=7, threads=1, chunk_size=1000)
    second = synth.generate(SMALL, tmp_path / "b", seed=7, threads=2, chunk_size=37)
    other = synth.generate(SMALL, tmp_path / "c", seed=8, threads=2, chunk_size=37)

    digests = file_digests(first.out_dir)
    assert sorted(digests) == sorted(f"{domain}.csv" for domain in synth.DOMAINS)
    assert file_digests(second.out_dir) == digests
    assert first.rows == second.rows and first.designed == second.designed
    different = file_digests(other.out_dir)
    for name in ("dm.csv", "tr.csv", "tu.csv", "ex.csv"):
        assert different[name] != digests[name], name


def test_csv_and_parquet_hold_the_same_rows(tmp_path: Path) -> None:
    as_csv = synth.generate(SMALL, tmp_path / "csv", seed=3, chunk_size=128)
    as_parquet = synth.generate(SMALL, tmp_path / "parquet", seed=3, file_format="parquet")
    assert sorted(path.name for path in as_parquet.out_dir.iterdir()) == sorted(
        f"{domain}.parquet" for domain in synth.DOMAINS
    )
    assert as_parquet.rows == as_csv.rows

    loaded = {}
    for name, folder in (("csv", as_csv.out_dir), ("parquet", as_parquet.out_dir)):
        con = duckdb.connect()
        load_exports(con, folder)
        loaded[name] = con
    for spec in sdtm_domains():
        columns = ", ".join(spec.columns)
        sql = f"select _row_number, {columns} from raw.{spec.name} order by _row_number"
        csv_rows = loaded["csv"].execute(sql).fetchall()
        parquet_rows = loaded["parquet"].execute(sql).fetchall()
        assert len(csv_rows) == as_csv.rows[spec.name] > 0, spec.name
        assert csv_rows == parquet_rows, spec.name


def test_files_follow_the_sdtm_contract_and_are_ordered(tmp_path: Path) -> None:
    summary = synth.generate(SMALL, tmp_path / "exports", seed=11, studies=3, chunk_size=50)
    con = duckdb.connect()
    for spec in sdtm_domains():
        path = summary.files[spec.name]
        header = path.read_text(encoding="utf-8").split("\n", 1)[0].split(",")
        assert header == [column.upper() for column in header], path.name
        missing = [c for c in spec.columns if c.upper() not in header]
        assert not missing, f"{path.name} lacks {missing}"

        table = f"read_csv('{path}', header = true, all_varchar = true)"
        rows = con.execute(f"select count(*) from {table}").fetchone()
        assert rows is not None and rows[0] == summary.rows[spec.name]
        # Each subject's rows are contiguous, subjects come in study and number
        # order, and the sequence number is unique within a subject.
        order = con.execute(
            f"""select usubjid, min(rn), max(rn), count(*)
            from (select *, row_number() over () as rn from {table})
            group by usubjid order by min(rn)"""
        ).fetchall()
        assert all(count == last - first + 1 for _, first, last, count in order), path.name
        subjects = [usubjid for usubjid, *_ in order]
        assert subjects == sorted(subjects, key=lambda s: (s[4:].split("-")[1], s[-6:])), path.name
        if spec.name != "dm":
            seq = spec.name.upper() + "SEQ"
            duplicates = con.execute(
                f"select count(*) - count(distinct (usubjid, {seq})) from {table}"
            ).fetchone()
            assert duplicates == (0,), path.name

    studies = con.execute(
        f"select count(distinct studyid), count(*), count(distinct usubjid) "
        f"from read_csv('{summary.files['dm']}', all_varchar = true)"
    ).fetchone()
    assert studies == (3, SMALL, SMALL)


def test_summary_counts_what_it_wrote(cohort: synth.SynthSummary) -> None:
    for domain in synth.DOMAINS:
        path = cohort.files[domain]
        assert path.parent == cohort.out_dir and path.suffix == ".csv"
        lines = path.read_bytes().count(b"\n")
        assert lines == cohort.rows[domain] + 1, domain
        assert cohort.bytes[domain] == path.stat().st_size
    statuses = [cohort.intended[status] for status in synth.STATUSES]
    assert sum(statuses) == pytest.approx(1.0)
    designed = cohort.designed
    assert designed["treated"] + designed["screen_failures"] == SUBJECTS
    assert sum(designed[status] for status in synth.STATUSES) == designed["treated"]
    assert not list(cohort.out_dir.glob(".synth-*")), "temporary files left behind"


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        synth.generate(0, tmp_path)
    with pytest.raises(ValueError):
        synth.generate(10, tmp_path, file_format="xlsx")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        synth.generate(10, tmp_path, shares=synth.Shares(no_pre_baseline_scan=0.9))


@pytest.mark.skipif(
    importlib.util.find_spec("hpd.quality") is None, reason="hpd.quality is not there yet"
)
def test_exports_pass_the_quality_suite(cohort: synth.SynthSummary) -> None:
    from hpd.quality import validate_exports

    con = duckdb.connect()
    load_exports(con, cohort.out_dir)
    result = validate_exports(con)
    assert result.blocking_failures == []


# ---------------------------------------------------------------------------
# The warehouse on the synthetic cohort


def test_warehouse_finds_the_designed_evaluability(
    cohort: synth.SynthSummary, warehouse: Path
) -> None:
    attrition = dict(query(warehouse, "select status, n from analytics.cohort_attrition"))
    assert list(attrition) == list(synth.STATUSES)
    treated = sum(attrition.values())
    assert treated == cohort.designed["treated"]
    for status in synth.STATUSES:
        # Exactly the designed subjects...
        assert attrition[status] == cohort.designed[status], status
        # ...in the promised share.
        share = attrition[status] / treated
        assert abs(share - cohort.intended[status]) <= STATUS_TOLERANCE, (status, share)

    assert query(warehouse, "select count(*) from analytics.rejected_rows") == [(0,)]


def test_warehouse_finds_the_designed_hyperprogressors(
    cohort: synth.SynthSummary, warehouse: Path
) -> None:
    evaluable, hpd = query(
        warehouse,
        """select count(*), count(*) filter (where hpd)
        from analytics.tumor_kinetics where evaluability = 'evaluable'""",
    )[0]
    assert evaluable == cohort.designed["evaluable"]
    assert hpd == cohort.designed["hpd"]
    share = hpd / evaluable
    assert abs(share - cohort.intended["hpd_among_evaluable"]) <= HPD_TOLERANCE, share
    # Every hyperprogressor grew before treatment and at least doubled its rate.
    assert query(
        warehouse,
        "select count(*) from analytics.tumor_kinetics where hpd and not (tgk_pre > 0 "
        "and tgkr >= 2 - 1e-9)",
    ) == [(0,)]


def test_identical_sums_are_not_growth(warehouse: Path) -> None:
    """Equal diameters give equal sums, whatever order they are added in:
    no stable disease becomes TGK_pre = 1e-15 and a TGKR of 1e15."""
    wrong = query(
        warehouse,
        f"""select usubjid, s_pre_mm, s_baseline_mm, tgk_pre, tgkr
        from analytics.tumor_kinetics
        where evaluability = 'evaluable' and hpd
            and abs(s_baseline_mm - s_pre_mm) < {FLOAT_NOISE_MM}""",
    )
    assert wrong == []


def test_independent_read(cohort: synth.SynthSummary, tmp_path: Path) -> None:
    result = run_hpd(
        "run",
        "--exports",
        cohort.out_dir,
        "--warehouse",
        tmp_path / "independent.duckdb",
        "--reports",
        tmp_path / "reports",
        "--reader",
        "independent",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    attrition = dict(
        query(tmp_path / "independent.duckdb", "select status, n from analytics.cohort_attrition")
    )
    read = cohort.designed["independent_read"]
    assert 0.05 * cohort.designed["with_scans"] < read < 0.15 * cohort.designed["with_scans"]
    # Subjects without an independent read have no scans in this read.
    assert attrition["no_baseline_scan"] >= cohort.designed["treated"] - read
    assert attrition["evaluable"] > 0.3 * read

"""The SQL baseline of the benchmark (python/hpd/baseline_sql.py and
python/hpd/sql/core_kinetics.sql).

It must give the core kinetics table of the warehouse (`analytics.tumor_kinetics`)
to the last digit, for a synthetic cohort into which corner cases the
generator does not produce are written (duplicate measurements, VISIT and
date keys, imputed dates, ties on a date, blank and lower-case readers and
units, first identification rows, a first dose from DM, many new lesions).
The warehouse is built with `dbt build` of tumor_kinetics and its parents
only (no data tests), to keep this file fast.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from conftest import build_kinetics_warehouse
from hpd import synth
from hpd.baseline_sql import core_kinetics, run
from hpd.core_kinetics import COLUMNS, compare
from hpd.errors import DataError

SUBJECTS = 1500
SEED = 271828

# Each statement changes the rows of one group of subjects (`g`: the subject
# number modulo 20; 0 stays as generated). `rn` is the row's place in its file.
CORNER_CASES = """
create table groups as
    select usubjid, cast(right(usubjid, 6) as integer) % 20 as g from dm;
create macro in_group(n) as table select usubjid from groups where g = n;
-- assessments keyed by VISIT, and by date
update tr set visitnum = null where usubjid in (from in_group(1));
update tr set visitnum = null, visit = null where usubjid in (from in_group(2));
-- the investigator as a blank reader; units in upper case
update tr set treval = null, trstresu = upper(trstresu), trorresu = upper(trorresu)
    where treval = 'INVESTIGATOR' and usubjid in (from in_group(3));
update tu set tueval = null where tueval = 'INVESTIGATOR' and usubjid in (from in_group(3));
-- partial dates: on one lesion (the assessment keeps its full date), and on
-- every row of VISITNUM 3 (an imputed assessment date)
update tr set trdtc = left(trdtc, 7)
    where usubjid in (from in_group(4)) and (trlnkid like '%T01' or visitnum = '3');
-- no EX rows (first dose from DM); EX dates with a time
delete from ex where usubjid in (from in_group(5));
update ex set exstdtc = exstdtc || 'T09:15' where usubjid in (from in_group(6));
-- targets recorded ABSENT (0 mm); test codes in lower case
update tr set trstresc = 'ABSENT', trstresn = null, trorres = 'ABSENT', trorresu = null,
    trstresu = null
    where usubjid in (from in_group(7)) and trlnkid = 'T02' and visitnum >= '3';
update tr set trtestcd = lower(trtestcd) where usubjid in (from in_group(7));
-- unused test codes, also as an assessment of their own; nodal targets by LDIAM too
insert into tr select * replace ('VOLUME' as trtestcd, '999' as trstresn, rn + 1e7 as rn)
    from tr where usubjid in (from in_group(8)) and trlnkid = 'T01';
insert into tr select * replace ('VOLUME' as trtestcd, '99' as visitnum, rn + 2e7 as rn)
    from tr where usubjid in (from in_group(8)) and trlnkid = 'T01' and visitnum = '2';
insert into tr select * replace ('LDIAM' as trtestcd, '77.7' as trstresn, '77.7' as trorres,
    rn + 3e7 as rn)
    from tr where usubjid in (from in_group(9)) and trtestcd = 'LPERP';
-- duplicates (SPEC rule 6): a later-dated row wins; on one date the last in
-- the file wins; an earlier-dated row loses and does not date the assessment
insert into tr select * replace (
        strftime(cast(left(trdtc, 10) as date) + 2, '%Y-%m-%d') as trdtc,
        cast(cast(trstresn as double) + 3 as varchar) as trstresn,
        cast(cast(trorres as double) + 3 as varchar) as trorres, rn + 4e7 as rn)
    from tr where usubjid in (from in_group(10)) and trlnkid = 'T01' and visitnum in ('2', '3');
insert into tr select * replace (
        cast(cast(trstresn as double) + 1.5 as varchar) as trstresn,
        cast(cast(trorres as double) + 1.5 as varchar) as trorres, rn + 5e7 as rn)
    from tr where usubjid in (from in_group(10)) and trlnkid = 'T02' and visitnum in ('1', '2')
        and rn < 1e7;
insert into tr select * replace (
        strftime(cast(left(trdtc, 10) as date) - 5, '%Y-%m-%d') as trdtc,
        '1.0' as trstresn, '1.0' as trorres, rn + 6e7 as rn)
    from tr where usubjid in (from in_group(10)) and trlnkid = 'T03'
        and visitnum in ('1', '2', '3') and rn < 1e7;
insert into tr select * replace ('NOT DONE' as trstat, null as trstresn, null as trorres,
        null as trstresc, rn + 7e7 as rn)
    from tr where usubjid in (from in_group(11)) and trlnkid = 'T01' and visitnum = '2'
        and rn < 1e7;
-- a second assessment on the date of the baseline (non-target states only: the
-- later VISITNUM is the baseline, incomplete) and of the first evaluation
insert into tr select * replace (
        cast(cast(visitnum as integer) + 50 as varchar) as visitnum, 'UNSCHEDULED' as visit,
        rn + 8e7 as rn)
    from tr where usubjid in (from in_group(12)) and visitnum in ('2', '3')
        and trtestcd = 'TUMSTATE' and rn < 1e7;
-- first identification rows: a later one of T01 (ignored), an earlier one of
-- NT01 calling it a target (used)
insert into tu select * replace ('NON-TARGET' as tuorres, 'NON-TARGET' as tustresc,
        strftime(cast(left(tudtc, 10) as date) + 30, '%Y-%m-%d') as tudtc, rn + 1e7 as rn)
    from tu where usubjid in (from in_group(13)) and tulnkid = 'T01';
insert into tu select * replace ('TARGET' as tuorres, 'TARGET' as tustresc,
        strftime(cast(left(tudtc, 10) as date) - 30, '%Y-%m-%d') as tudtc, rn + 2e7 as rn)
    from tu where usubjid in (from in_group(13)) and tulnkid = 'NT01';
-- nine measurable new lesions from the first evaluation on (slots: 5, 2 per
-- organ), in four organs, one of them blank
create table first_evaluations as
    select usubjid, min(cast(visitnum as integer)) as v from tr
    where usubjid in (from in_group(14)) and cast(visitnum as integer) >= 3 group by usubjid;
create table new_lesions as
    select usubjid, k, 'X' || k as lesion,
        ['LIVER', 'LUNG', null, 'LYMPH NODE'][k % 4 + 1] as organ,
        cast(10 + (k * 7) % 13 as varchar) as mm
    from first_evaluations, range(9) as t(k);
insert into tu select tu.* replace (n.lesion as tulnkid, 'NEW' as tuorres, 'NEW' as tustresc,
        n.organ as tuloc, 9e7 + tu.rn * 10 + n.k as rn)
    from tu join new_lesions as n using (usubjid)
    where tu.tulnkid = 'T01' and tu.tueval = 'INVESTIGATOR';
insert into tr select tr.* replace (n.lesion as trlnkid,
        case when n.organ = 'LYMPH NODE' then 'LPERP' else 'LDIAM' end as trtestcd,
        n.mm as trstresn, n.mm as trorres, 'mm' as trstresu, 'mm' as trorresu, null as trstat,
        null as trstresc, 9e7 + tr.rn * 10 + n.k as rn)
    from tr join first_evaluations as f using (usubjid) join new_lesions as n using (usubjid)
    where tr.trlnkid = 'T01' and tr.treval = 'INVESTIGATOR' and cast(tr.visitnum as integer) >= f.v;
"""


def add_corner_cases(folder: Path) -> None:
    """Rewrite dm, ex, tu and tr of a synthetic CSV cohort with the corner cases."""
    con = duckdb.connect()
    for domain in ("dm", "ex", "tu", "tr"):
        source = folder / f"{domain}.csv"
        con.execute(
            f"create table {domain} as select *, cast(ordinality as double) as rn "
            "from read_csv(?, header = true, all_varchar = true) with ordinality",
            [str(source)],
        )
        con.execute(f"alter table {domain} drop ordinality")
    con.execute(CORNER_CASES)
    for domain in ("dm", "ex", "tu", "tr"):
        target = str(folder / f"{domain}.csv")
        con.execute(
            f"copy (select * exclude (rn) from {domain} order by rn) to '{target}' (header)"
        )
    con.close()


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic cohort as CSV exports, with the corner cases written in."""
    folder = tmp_path_factory.mktemp("baseline_sql") / "exports"
    synth.generate(SUBJECTS, folder, seed=SEED)
    add_corner_cases(folder)
    return folder


@pytest.fixture(scope="module")
def warehouse(exports: Path) -> Path:
    """The warehouse with `analytics.tumor_kinetics` built by dbt from those exports."""
    warehouse = build_kinetics_warehouse(exports)
    return warehouse


def _query(warehouse: Path, sql: str) -> pd.DataFrame:
    # Not read-only: dbt-duckdb may still hold the file open in this process.
    with duckdb.connect(str(warehouse)) as con:
        return con.execute(sql).df()


@pytest.fixture(scope="module")
def sql_table(exports: Path) -> pd.DataFrame:
    return core_kinetics(exports)


def test_agrees_with_the_warehouse(warehouse: Path, sql_table: pd.DataFrame) -> None:
    assert tuple(sql_table.columns) == COLUMNS
    assert sql_table["usubjid"].is_unique
    warehouse_table = _query(warehouse, "select * from analytics.tumor_kinetics")
    assert compare(warehouse_table, sql_table) == []


def test_the_corner_cases_are_there(warehouse: Path, sql_table: pd.DataFrame) -> None:
    """The rewritten rows reach the derivations (else the agreement proves little)."""
    checked = _query(
        warehouse,
        """
        select
            count(*) filter (where rejection_reason = 'duplicate') as duplicates,
            count(*) filter (where result_date_imputed) as imputed,
            count(*) filter (where assessment_key like 'VISIT %') as by_visit,
            count(*) filter (where assessment_key like 'DATE %') as by_date
        from intermediate.int_tr_checked
        """,
    ).iloc[0]
    assert min(checked) > 0, checked.to_dict()
    new_lesions = _query(
        warehouse, "select count(*) as n from intermediate.int_new_lesions where not is_counted"
    )
    assert new_lesions["n"].iloc[0] > 0
    assert set(sql_table["evaluability"]) == {
        "no_baseline_scan",
        "no_first_evaluation",
        "no_pre_baseline_scan",
        "incomplete_measurements",
        "evaluable",
    }


def test_run_leaves_the_table_and_counts_it(exports: Path, sql_table: pd.DataFrame) -> None:
    with duckdb.connect() as con:
        assert run(exports, con) == len(sql_table)
        again = core_kinetics(exports, con)
        assert con.execute("select count(*) from core_kinetics").fetchone() == (len(again),)
    pd.testing.assert_frame_equal(again, sql_table)


def test_csv_and_parquet_give_the_same_table(tmp_path: Path) -> None:
    tables = [
        core_kinetics(synth.generate(300, tmp_path / form, seed=SEED, file_format=form).out_dir)
        for form in ("csv", "parquet")
    ]
    pd.testing.assert_frame_equal(*tables)


def test_columns_are_matched_by_name(tmp_path: Path) -> None:
    """Names in any case; an optional column may be absent, a required one not."""
    cohort = synth.generate(200, tmp_path / "exports", seed=SEED).out_dir
    expected = core_kinetics(cohort)
    con = duckdb.connect()
    dm = str(cohort / "dm.csv")
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    for domain in ("ex", "tu", "tr"):
        (renamed / f"{domain.upper()}.csv").write_bytes((cohort / f"{domain}.csv").read_bytes())
    # Lower-case names, and no RFXSTDTC: every treated subject has EX rows.
    con.execute(
        f"copy (select usubjid as usubjid, studyid as studyid from read_csv('{dm}')) "
        f"to '{renamed / 'dm.csv'}' (header)"
    )
    pd.testing.assert_frame_equal(core_kinetics(renamed), expected)

    tr = str(cohort / "tr.csv")
    con.execute(
        f"copy (select * exclude (trtestcd) from read_csv('{tr}', all_varchar = true)) "
        f"to '{renamed / 'TR.csv'}' (header)"
    )
    with pytest.raises(DataError, match=r"TR\.csv, column TRTESTCD: required column is missing"):
        core_kinetics(renamed)

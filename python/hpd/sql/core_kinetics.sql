-- The core kinetics table (hpd.core_kinetics.COLUMNS) straight from the export
-- files, in one hand-written DuckDB script: the floor `make bench` compares the
-- dbt warehouse against. The investigator read (TREVAL/TUEVAL INVESTIGATOR or
-- blank), SPEC §2 for data without rejected rows.
--
-- hpd.baseline_sql replaces {dm}, {ex}, {tu}, {tr} with a subquery over the
-- file (read_csv(..., all_varchar = true) or read_parquet): the columns used
-- below, lower case, as text (null when a file lacks an optional one), and
-- `ordinality`, the row's position in its file. It gives DM a subject key,
-- and breaks the last ties of SPEC rule 4 (a lesion's first identification
-- row) and rule 6 (a lesion measured twice in one assessment by one test:
-- the latest-dated row, then the last in the file).
--
-- Plan: one hash join of TR on the lesions, one aggregate to drop duplicate
-- measurements, one to form assessments, one per subject for the roles; the
-- rare new lesions go through lists on the way.

-- An SDTM date (SPEC §1): the time dropped, a partial date imputed to the
-- first day of its month or year.
create or replace temp macro hpd_sdtm_date(x) as case
    when length(x) >= 10 then try_cast(left(x, 10) as date)
    when length(x) = 7 then try_cast(x || '-01' as date)
    when length(x) = 4 then try_cast(x || '-01-01' as date)
end;

create or replace temp table core_kinetics as
with

-- Treated subjects (sid: their DM row) and their first dose: the earliest
-- EXSTDTC (ISO 8601 text sorts like the dates it stands for), else
-- DM.RFXSTDTC.
first_doses as materialized (
    select
        dm.usubjid,
        dm.ordinality as sid,
        hpd_sdtm_date(coalesce(ex.first_start, dm.rfxstdtc)) as fd
    from {dm} as dm
    left join (
        select usubjid, min(exstdtc) as first_start
        from {ex}
        group by usubjid
    ) as ex on dm.usubjid = ex.usubjid
    where coalesce(ex.first_start, dm.rfxstdtc) is not null
),

-- The investigator's lesions of treated subjects, class and organ from the
-- first identification row (earliest dated, lowest VISITNUM, first in the
-- file), numbered (lkey). cls: 1 target, 2 new, 3 new nodal, 0 other.
lesions as materialized (
    select
        f.usubjid,
        f.sid,
        tu.lid,
        row_number() over () as lkey,
        case tu.first_row.cls
            when 'TARGET' then 1
            when 'NEW' then 2 + (tu.first_row.organ = 'LYMPH NODE')::int
            else 0
        end as cls,
        tu.first_row.organ,
        tu.first_row.organ = 'LYMPH NODE' as nodal
    from (
        select
            usubjid,
            tulnkid as lid,
            arg_min(
                struct_pack(
                    cls := upper(coalesce(tustresc, tuorres)),
                    organ := coalesce(upper(tuloc), 'UNKNOWN')
                ),
                struct_pack(
                    d := coalesce(hpd_sdtm_date(tudtc), date '9999-12-31'),
                    v := coalesce(try_cast(visitnum as double), 'inf'::double),
                    r := ordinality
                )
            ) as first_row
        from {tu} as tu_rows
        where tueval is null or upper(tueval) = 'INVESTIGATOR'
        group by usubjid, tulnkid
    ) as tu
    inner join first_doses as f on tu.usubjid = f.usubjid
),

target_counts as (
    select sid, count(*) as n_targets
    from lesions
    where cls = 1
    group by sid
),

-- The investigator's TR rows of the tests used, on identified lesions, one
-- per lesion, test and assessment (rule 6). An assessment is a VISITNUM
-- (vn), else a VISIT, else a date (vkey). mm: the lesion's own diameter
-- (nodal: LPERP, others: LDIAM), NOT DONE none, ABSENT 0, the number of
-- TRSTRESN/TRSTRESU else TRORRES/TRORRESU, cm x 10 (rule 4).
measurements as (
    select
        sid,
        vn,
        vkey,
        cls,
        lkey,
        arg_max_null(
            struct_pack(d := d, imputed := imputed, mm := mm),
            coalesce(d - date '2000-01-01', -1000000)::bigint * 68719476736 + ordinality
        ) as kept
    from (
        select
            l.sid,
            l.lkey,
            l.cls,
            tr.ordinality,
            try_cast(tr.visitnum as double) as vn,
            case when tr.visitnum is null
                then coalesce('VISIT ' || upper(tr.visit), 'DATE ' || left(tr.trdtc, 10))
            end as vkey,
            upper(tr.trtestcd) as test,
            hpd_sdtm_date(tr.trdtc) as d,
            length(tr.trdtc) in (4, 7) as imputed,
            case
                when test <> case when l.nodal then 'LPERP' else 'LDIAM' end
                    or upper(tr.trstat) = 'NOT DONE' then null
                when upper(tr.trstresc) in ('ABSENT', 'NOT PRESENT') then 0
                when try_cast(tr.trstresn as double) is not null
                    then try_cast(tr.trstresn as double)
                        * case when lower(tr.trstresu) = 'cm' then 10 else 1 end
                else try_cast(tr.trorres as double)
                    * case when lower(tr.trorresu) = 'cm' then 10 else 1 end
            end as mm
        from {tr} as tr
        inner join lesions as l on tr.usubjid = l.usubjid and tr.trlnkid = l.lid
        where (tr.treval is null or upper(tr.treval) = 'INVESTIGATOR')
            and upper(tr.trtestcd) in ('LDIAM', 'LPERP', 'TUMSTATE')
    )
    group by sid, vn, vkey, cls, lkey, test
),

-- Assessments: the date (the earliest full date, else the earliest imputed
-- one: rule 2), the target sum as exact decimals, the targets measured, and
-- the new lesions measurable there (10 mm, nodal 15 mm, with rule 9's
-- tolerance).
assessments as (
    select
        sid,
        vn,
        vkey,
        coalesce(min(kept.d) filter (where not kept.imputed), min(kept.d)) as ad,
        count(kept.mm) filter (where cls = 1) as n_measured,
        sum(kept.mm::decimal(18, 9)) filter (where cls = 1) as tsum,
        list(struct_pack(lkey := lkey, mm := kept.mm)) filter (
            where (cls = 2 and kept.mm >= 10 - 1e-9 * 10) or (cls = 3 and kept.mm >= 15 - 1e-9 * 15)
        ) as new_measurable
    from measurements
    group by sid, vn, vkey
),

-- ord: an assessment's place among the subject's (date, then VISITNUM,
-- blank last, then the VISIT/date key); scan: what the kinetics need of it.
timed as (
    select
        a.sid,
        a.ad,
        struct_pack(d := a.ad, v := coalesce(a.vn, 'inf'::double), k := a.vkey) as ord,
        a.new_measurable,
        date_diff('day', a.ad, f.fd) as days_before_dose,
        struct_pack(
            d := a.ad,
            ord := struct_pack(d := a.ad, v := coalesce(a.vn, 'inf'::double), k := a.vkey),
            complete := coalesce(t.n_targets = a.n_measured, false),
            tsum := a.tsum::double
        ) as scan
    from assessments as a
    inner join first_doses as f on a.sid = f.sid
    left join target_counts as t on a.sid = t.sid
),

-- Roles over all assessments, complete or not (rule 1): the baseline is the
-- latest 0-42 days before the first dose, the first evaluation the earliest
-- after it; the pre-baseline, the latest 14-183 days before the baseline, is
-- among the scans 14-225 days before the dose.
roles as (
    select
        sid,
        arg_max(scan, ord) filter (where days_before_dose between 0 and 42) as bl,
        arg_min(scan, ord) filter (where days_before_dose < 0) as fe,
        list(scan) filter (where days_before_dose between 14 and 42 + 183) as pre_candidates,
        list(struct_pack(ad := ad, ord := ord, lesions := new_measurable)) filter (
            where days_before_dose < 0 and new_measurable is not null
        ) as new_lesion_scans
    from timed
    group by sid
),

chosen as materialized (
    select
        sid,
        bl,
        fe,
        list_max(
            list_filter(pre_candidates, lambda x: date_diff('day', x.d, bl.d) between 14 and 183)
        ) as pb,
        new_lesion_scans
    from roles
),

-- New lesions that count (rule 8): by first measurability after the first
-- dose (date, size largest first, id), 2 per organ, 5 in all.
first_measurable as (
    select c.sid, l.lid, l.organ, c.fm
    from (
        select sid, lesion.lkey, arg_min(struct_pack(ad := ad, mm := lesion.mm, ord := ord), ord) as fm
        from (
            select sid, scan.ad, scan.ord, unnest(scan.lesions) as lesion
            from (select sid, unnest(new_lesion_scans) as scan from chosen)
        )
        group by sid, lesion.lkey
    ) as c
    inner join lesions as l on c.lkey = l.lkey
),

counted_new_lesions as (
    select *
    from (
        select
            *,
            row_number() over (partition by sid order by fm.ad, fm.mm desc, lid) as slot
        from (
            select
                *,
                row_number() over (
                    partition by sid, organ order by fm.ad, fm.mm desc, lid
                ) as organ_slot
            from first_measurable
        )
        where organ_slot <= 2
    )
    where slot <= 5
),

-- Counted lesions are in the burden from their first measurable assessment
-- on; at the first evaluation, the earliest after the dose, those are the
-- ones first measurable there.
first_evaluation_new_lesions as (
    select n.sid, sum(n.fm.mm::decimal(18, 9))::double as new_sum
    from counted_new_lesions as n
    inner join chosen as c on n.sid = c.sid
    where n.fm.ord is not distinct from c.fe.ord
    group by n.sid
),

scans as (
    select
        f.usubjid,
        f.fd,
        c.pb,
        c.bl,
        c.fe,
        case when c.pb.complete then c.pb.tsum end as ts_pre,
        case when c.bl.complete then c.bl.tsum end as ts_bl,
        case when c.fe.complete then c.fe.tsum end as ts_fe,
        -- irRECIST burden: before the dose it is the target sum.
        case when c.fe.complete then c.fe.tsum + coalesce(n.new_sum, 0) end as s_fe,
        date_diff('day', c.pb.d, c.bl.d)::double / 30.4375 as months_pre,
        date_diff('day', c.bl.d, c.fe.d)::double / 30.4375 as months_post
    from first_doses as f
    left join chosen as c on f.sid = c.sid
    left join first_evaluation_new_lesions as n on f.sid = n.sid
),

kinetics as (
    select
        *,
        (ts_bl - ts_pre) / months_pre as tgk_pre,
        (s_fe - ts_bl) / months_post as tgk_post
    from scans
)

select
    usubjid as usubjid,
    case
        when bl is null then 'no_baseline_scan'
        when fe is null then 'no_first_evaluation'
        when pb is null then 'no_pre_baseline_scan'
        when not (pb.complete and bl.complete and fe.complete) then 'incomplete_measurements'
        else 'evaluable'
    end as evaluability,
    fd as first_dose_date,
    pb.d as pre_baseline_date,
    bl.d as baseline_date,
    fe.d as first_evaluation_date,
    ts_pre as target_sum_pre_mm,
    ts_bl as target_sum_baseline_mm,
    ts_fe as target_sum_first_evaluation_mm,
    ts_pre as s_pre_mm,
    ts_bl as s_baseline_mm,
    s_fe as s_first_evaluation_mm,
    months_pre,
    months_post,
    tgk_pre,
    tgk_post,
    case when tgk_pre <> 0 then tgk_post / tgk_pre end as tgkr,
    -- Ferté: 100 (exp(3 ln(S_b / S_a) / dt) - 1), on target sums.
    case when ts_pre > 0 and ts_bl > 0 and months_pre > 0
        then 100 * (exp(3 * ln(ts_bl / ts_pre) / months_pre) - 1)
    end as tgr_pre,
    case when ts_bl > 0 and ts_fe > 0 and months_post > 0
        then 100 * (exp(3 * ln(ts_fe / ts_bl) / months_post) - 1)
    end as tgr_post
from kinetics;

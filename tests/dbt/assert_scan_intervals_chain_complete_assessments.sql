-- scan_intervals (SPEC rule 15) links each complete assessment of
-- tumor_assessments whose role is pre_baseline, baseline, first_evaluation or
-- follow_up to the next such one, and nothing else: one interval fewer than
-- such scans per subject, each interval starting where the previous one
-- ended, with the scans' own dates, roles and burdens. Fails with each
-- missing, extra or differing interval.

with

chain as (

    select
        usubjid,
        role,
        assessment_date,
        irrecist_burden_mm,
        target_sum_mm,
        row_number() over (partition by usubjid order by assessment_order) as position
    from {{ ref('tumor_assessments') }}
    where target_complete
        and role in ('pre_baseline', 'baseline', 'first_evaluation', 'follow_up')

),

expected as (

    select
        earlier.usubjid,
        earlier.position as interval_index,
        earlier.role as from_role,
        later.role as to_role,
        earlier.assessment_date as from_date,
        later.assessment_date as to_date,
        earlier.irrecist_burden_mm as burden_from_mm,
        later.irrecist_burden_mm as burden_to_mm,
        earlier.target_sum_mm as target_sum_from_mm,
        later.target_sum_mm as target_sum_to_mm
    from chain as earlier
    inner join chain as later
        on earlier.usubjid = later.usubjid
        and later.position = earlier.position + 1

),

intervals as (

    select * from {{ ref('scan_intervals') }}

)

select
    coalesce(intervals.usubjid, expected.usubjid) as usubjid,
    coalesce(intervals.interval_index, expected.interval_index) as interval_index,
    intervals.usubjid is null as missing_interval,
    expected.usubjid is null as extra_interval
from intervals
full outer join expected
    on intervals.usubjid = expected.usubjid
    and intervals.interval_index = expected.interval_index
where intervals.usubjid is null
    or expected.usubjid is null
    or intervals.from_role <> expected.from_role
    or intervals.to_role <> expected.to_role
    or intervals.from_date <> expected.from_date
    or intervals.to_date <> expected.to_date
    or intervals.burden_from_mm <> expected.burden_from_mm
    or intervals.burden_to_mm <> expected.burden_to_mm
    or intervals.target_sum_from_mm <> expected.target_sum_from_mm
    or intervals.target_sum_to_mm <> expected.target_sum_to_mm

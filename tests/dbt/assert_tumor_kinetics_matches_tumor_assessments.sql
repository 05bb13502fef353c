-- The scans of tumor_kinetics are the scans of tumor_assessments with those
-- roles: same dates, the burdens and target sums of complete scans only
-- (null when incomplete), and the responses and percent change of the first
-- evaluation; the second-evaluation response is that of the first
-- follow-up. Fails with each subject whose figures disagree.

with

assessments as (

    select * from {{ ref('tumor_assessments') }}

),

second_evaluation as (

    select
        usubjid,
        min(assessment_order) as second_evaluation_order
    from assessments
    where role = 'follow_up'
    group by usubjid

),

by_role as (

    select
        assessments.usubjid,
        max(case when role = 'pre_baseline' then assessment_date end) as pre_baseline_date,
        max(case when role = 'baseline' then assessment_date end) as baseline_date,
        max(case when role = 'first_evaluation' then assessment_date end) as first_evaluation_date,
        max(case when role = 'pre_baseline' and target_complete then irrecist_burden_mm end) as s_pre_mm,
        max(case when role = 'baseline' and target_complete then irrecist_burden_mm end) as s_baseline_mm,
        max(case when role = 'first_evaluation' and target_complete then irrecist_burden_mm end)
            as s_first_evaluation_mm,
        max(case when role = 'pre_baseline' and target_complete then target_sum_mm end) as target_sum_pre_mm,
        max(case when role = 'baseline' and target_complete then target_sum_mm end) as target_sum_baseline_mm,
        max(case when role = 'first_evaluation' and target_complete then target_sum_mm end)
            as target_sum_first_evaluation_mm,
        max(case when role = 'first_evaluation' then response_irrecist end) as response_irrecist,
        max(case when role = 'first_evaluation' then response_recist end) as response_recist,
        max(case when role = 'first_evaluation' then pct_change_from_baseline end) as pct_change,
        max(
            case when assessment_order = second_evaluation.second_evaluation_order then response_irrecist end
        ) as response_second_irrecist
    from assessments
    left join second_evaluation on assessments.usubjid = second_evaluation.usubjid
    group by assessments.usubjid

),

kinetics as (

    select * from {{ ref('tumor_kinetics') }}

)

select
    kinetics.usubjid,
    kinetics.evaluability
from kinetics
left join by_role on kinetics.usubjid = by_role.usubjid
where kinetics.pre_baseline_date is distinct from by_role.pre_baseline_date
    or kinetics.baseline_date is distinct from by_role.baseline_date
    or kinetics.first_evaluation_date is distinct from by_role.first_evaluation_date
    or kinetics.s_pre_mm is distinct from by_role.s_pre_mm
    or kinetics.s_baseline_mm is distinct from by_role.s_baseline_mm
    or kinetics.s_first_evaluation_mm is distinct from by_role.s_first_evaluation_mm
    or kinetics.target_sum_pre_mm is distinct from by_role.target_sum_pre_mm
    or kinetics.target_sum_baseline_mm is distinct from by_role.target_sum_baseline_mm
    or kinetics.target_sum_first_evaluation_mm is distinct from by_role.target_sum_first_evaluation_mm
    or kinetics.response_first_evaluation_irrecist is distinct from by_role.response_irrecist
    or kinetics.response_first_evaluation_recist is distinct from by_role.response_recist
    or kinetics.pct_change_first_evaluation is distinct from by_role.pct_change
    or kinetics.response_second_evaluation_irrecist is distinct from by_role.response_second_irrecist

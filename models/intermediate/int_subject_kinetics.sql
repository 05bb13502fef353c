-- One row per treated subject: the three scans of the method, the kinetics
-- between them (SPEC §2), the responses at the first evaluation,
-- pseudoprogression and the evaluability status. Kinetics use complete
-- assessments only, so a burden here is null when its scan was incomplete.

with

subjects as (

    select * from {{ ref('int_subjects') }}
    where is_treated

),

assessments as (

    select * from {{ ref('int_assessment_responses') }}

),

-- Its own import rather than a second read of `assessments`, which DuckDB
-- and PostgreSQL would materialize, every column of every assessment.
follow_ups as (

    select * from {{ ref('int_assessment_responses') }}
    where role = 'follow_up'

),

treatment_failure as (

    select * from {{ ref('int_treatment_failure') }}

),

second_evaluation as (

    select
        usubjid,
        min(assessment_order) as second_evaluation_order
    from follow_ups
    group by usubjid

),

scans as (

    select
        -- Not `usubjid`: `intervals` takes scans.* beside subjects.usubjid.
        assessments.usubjid as scan_usubjid,
        max(case when role = 'pre_baseline' then assessment_date end) as pre_baseline_date,
        max(case when role = 'baseline' then assessment_date end) as baseline_date,
        max(case when role = 'first_evaluation' then assessment_date end) as first_evaluation_date,
        sum(case when role = 'pre_baseline' then 1 else 0 end) as has_pre_baseline,
        sum(case when role = 'baseline' then 1 else 0 end) as has_baseline,
        sum(case when role = 'first_evaluation' then 1 else 0 end) as has_first_evaluation,
        sum(case when role = 'pre_baseline' and target_complete then 1 else 0 end)
            as pre_baseline_complete,
        sum(case when role = 'baseline' and target_complete then 1 else 0 end) as baseline_complete,
        sum(case when role = 'first_evaluation' and target_complete then 1 else 0 end)
            as first_evaluation_complete,
        max(case when role = 'pre_baseline' and target_complete then irrecist_burden_mm end)
            as s_pre_mm,
        max(case when role = 'baseline' and target_complete then irrecist_burden_mm end)
            as s_baseline_mm,
        max(case when role = 'first_evaluation' and target_complete then irrecist_burden_mm end)
            as s_first_evaluation_mm,
        max(case when role = 'pre_baseline' and target_complete then target_sum_mm end)
            as target_sum_pre_mm,
        max(case when role = 'baseline' and target_complete then target_sum_mm end)
            as target_sum_baseline_mm,
        max(case when role = 'first_evaluation' and target_complete then target_sum_mm end)
            as target_sum_first_evaluation_mm,
        max(case when role = 'first_evaluation' then response_irrecist end)
            as response_first_evaluation_irrecist,
        max(case when role = 'first_evaluation' then response_recist end)
            as response_first_evaluation_recist,
        max(case when role = 'first_evaluation' then pct_change_from_baseline end)
            as pct_change_first_evaluation,
        max(
            case
                when assessments.assessment_order = second_evaluation.second_evaluation_order
                    then response_irrecist
            end
        ) as response_second_evaluation_irrecist
    from assessments
    left join second_evaluation on assessments.usubjid = second_evaluation.usubjid
    group by assessments.usubjid

),

intervals as (

    select
        subjects.studyid,
        subjects.usubjid,
        subjects.first_dose_date,
        scans.*,
        {{ months_between('scans.pre_baseline_date', 'scans.baseline_date') }} as months_pre,
        {{ months_between('scans.baseline_date', 'scans.first_evaluation_date') }} as months_post
    from subjects
    left join scans on subjects.usubjid = scans.scan_usubjid

),

kinetics as (

    select
        intervals.*,
        {{ tgk('s_pre_mm', 's_baseline_mm', 'months_pre') }} as tgk_pre,
        {{ tgk('s_baseline_mm', 's_first_evaluation_mm', 'months_post') }} as tgk_post,
        {{ tgr('target_sum_pre_mm', 'target_sum_baseline_mm', 'months_pre') }} as tgr_pre,
        {{ tgr('target_sum_baseline_mm', 'target_sum_first_evaluation_mm', 'months_post') }}
            as tgr_post,
        {{ safe_ratio('s_baseline_mm - s_pre_mm', 's_pre_mm') }} as pp_pre,
        {{ safe_ratio('s_first_evaluation_mm - s_baseline_mm', 's_baseline_mm') }} as pp_post,
        case
            when coalesce(has_baseline, 0) = 0 then 'no_baseline_scan'
            when coalesce(has_first_evaluation, 0) = 0 then 'no_first_evaluation'
            when coalesce(has_pre_baseline, 0) = 0 then 'no_pre_baseline_scan'
            when pre_baseline_complete = 0 or baseline_complete = 0 or first_evaluation_complete = 0
                then 'incomplete_measurements'
            else 'evaluable'
        end as evaluability
    from intervals

),

final as (

    select
        kinetics.studyid,
        kinetics.usubjid,
        kinetics.evaluability,
        treatment_failure.stop_reason,
        kinetics.first_dose_date,
        kinetics.pre_baseline_date,
        kinetics.baseline_date,
        kinetics.first_evaluation_date,
        kinetics.s_pre_mm,
        kinetics.s_baseline_mm,
        kinetics.s_first_evaluation_mm,
        kinetics.target_sum_pre_mm,
        kinetics.target_sum_baseline_mm,
        kinetics.target_sum_first_evaluation_mm,
        kinetics.months_pre,
        kinetics.months_post,
        kinetics.tgk_pre,
        kinetics.tgk_post,
        {{ safe_ratio('kinetics.tgk_post', 'kinetics.tgk_pre') }} as tgkr,
        kinetics.tgk_pre <= 0 as tgk_pre_non_positive,
        kinetics.tgr_pre,
        kinetics.tgr_post,
        {{ safe_ratio('kinetics.tgr_post', 'kinetics.tgr_pre') }} as tgr_ratio,
        kinetics.tgr_post - kinetics.tgr_pre as delta_tgr,
        kinetics.pp_pre,
        kinetics.pp_post,
        {{ safe_ratio('kinetics.s_first_evaluation_mm', 'kinetics.s_pre_mm') }}
            as burden_ratio_post_to_pre,
        kinetics.pct_change_first_evaluation,
        treatment_failure.ttf_months,
        kinetics.response_first_evaluation_irrecist,
        kinetics.response_first_evaluation_recist,
        kinetics.response_second_evaluation_irrecist,
        case
            when kinetics.first_evaluation_date is not null then
                coalesce(
                    kinetics.response_first_evaluation_irrecist = 'PD'
                    and kinetics.response_second_evaluation_irrecist in ('SD', 'PR', 'CR'),
                    false
                )
        end as pseudoprogression
    from kinetics
    left join treatment_failure on kinetics.usubjid = treatment_failure.usubjid

)

select * from final

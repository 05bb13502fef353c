-- The role of each assessment against the first dose (SPEC §2, rule 1; over
-- all assessments, complete or not):
--   baseline          the latest on or before the first dose, at most
--                     `baseline_max_days` before it;
--   pre_baseline      the latest `pre_baseline_min_gap_days` to
--                     `pre_baseline_max_gap_days` before the baseline;
--   first_evaluation  the earliest after the first dose; follow_up the later ones;
--   other             everything else.

with

assessments as (

    select * from {{ ref('int_assessments') }}

),

subjects as (

    select * from {{ ref('int_subjects') }}

),

timed as (

    select
        assessments.*,
        subjects.first_dose_date,
        {{ days_between('assessments.assessment_date', 'subjects.first_dose_date') }}
            as days_before_dose
    from assessments
    left join subjects on assessments.usubjid = subjects.usubjid

),

baseline as (

    select
        usubjid,
        max(assessment_order) as baseline_order
    from timed
    where days_before_dose between 0 and {{ var('baseline_max_days') }}
    group by usubjid

),

with_baseline as (

    select
        timed.*,
        baseline.baseline_order,
        baseline_assessment.assessment_date as baseline_date
    from timed
    left join baseline on timed.usubjid = baseline.usubjid
    left join timed as baseline_assessment
        on baseline.usubjid = baseline_assessment.usubjid
        and baseline.baseline_order = baseline_assessment.assessment_order

),

pre_baseline as (

    select
        usubjid,
        max(assessment_order) as pre_baseline_order
    from with_baseline
    where {{ days_between('assessment_date', 'baseline_date') }}
        between {{ var('pre_baseline_min_gap_days') }} and {{ var('pre_baseline_max_gap_days') }}
    group by usubjid

),

first_evaluation as (

    select
        usubjid,
        min(assessment_order) as first_evaluation_order
    from timed
    where days_before_dose < 0
    group by usubjid

),

final as (

    select
        with_baseline.studyid,
        with_baseline.usubjid,
        with_baseline.reader_id,
        with_baseline.assessment_key,
        with_baseline.visitnum,
        with_baseline.visit,
        with_baseline.assessment_date,
        with_baseline.date_imputed,
        with_baseline.assessment_order,
        with_baseline.first_dose_date,
        {{ study_day('with_baseline.assessment_date', 'with_baseline.first_dose_date') }} as study_day,
        case
            when with_baseline.assessment_order = with_baseline.baseline_order then 'baseline'
            when with_baseline.assessment_order = pre_baseline.pre_baseline_order then 'pre_baseline'
            when with_baseline.assessment_order = first_evaluation.first_evaluation_order
                then 'first_evaluation'
            when with_baseline.days_before_dose < 0 then 'follow_up'
            else 'other'
        end as role,
        -- An undated assessment, or one of an untreated subject, is not after the dose.
        coalesce(with_baseline.days_before_dose < 0, false) as is_post_dose
    from with_baseline
    left join pre_baseline on with_baseline.usubjid = pre_baseline.usubjid
    left join first_evaluation on with_baseline.usubjid = first_evaluation.usubjid

)

select * from final

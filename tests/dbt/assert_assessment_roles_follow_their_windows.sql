-- The roles of tumor_assessments follow SPEC §2 (rule 1), checked scan by
-- scan against the subject's first dose: no later scan fits the baseline
-- window (on or before the first dose, at most baseline_max_days before it)
-- than the baseline; no later scan fits the pre-baseline window
-- (pre_baseline_min_gap_days to pre_baseline_max_gap_days before the
-- baseline) than the pre-baseline; a pre-baseline needs a baseline; no scan
-- after the first dose precedes the first evaluation, and every follow-up
-- comes after it. Fails with each scan that contradicts its subject's roles.

with

assessments as (

    select * from {{ ref('tumor_assessments') }}

),

kinetics as (

    select usubjid, first_dose_date from {{ ref('tumor_kinetics') }}

),

anchors as (

    select
        usubjid,
        max(case when role = 'pre_baseline' then assessment_order end) as pre_baseline_order,
        max(case when role = 'baseline' then assessment_order end) as baseline_order,
        max(case when role = 'baseline' then assessment_date end) as baseline_date,
        max(case when role = 'first_evaluation' then assessment_order end) as first_evaluation_order
    from assessments
    group by usubjid

),

checked as (

    select
        assessments.usubjid,
        assessments.assessment_order,
        assessments.assessment_date,
        assessments.role,
        kinetics.first_dose_date,
        anchors.baseline_date,
        case
            when assessments.role = 'pre_baseline' and anchors.baseline_order is null
                then 'a pre-baseline without a baseline'
            when assessments.assessment_date <= kinetics.first_dose_date
                and assessments.assessment_date >= kinetics.first_dose_date - {{ var('baseline_max_days') }}
                and (anchors.baseline_order is null or assessments.assessment_order > anchors.baseline_order)
                then 'a later scan fits the baseline window'
            when {{ days_between('assessments.assessment_date', 'anchors.baseline_date') }}
                    between {{ var('pre_baseline_min_gap_days') }} and {{ var('pre_baseline_max_gap_days') }}
                and (anchors.pre_baseline_order is null or assessments.assessment_order > anchors.pre_baseline_order)
                then 'a later scan fits the pre-baseline window'
            when assessments.assessment_date > kinetics.first_dose_date
                and (anchors.first_evaluation_order is null
                    or assessments.assessment_order < anchors.first_evaluation_order)
                then 'a scan after the first dose precedes the first evaluation'
            when assessments.role = 'follow_up'
                and not coalesce(assessments.assessment_order > anchors.first_evaluation_order, false)
                then 'a follow-up not after the first evaluation'
        end as problem
    from assessments
    left join kinetics on assessments.usubjid = kinetics.usubjid
    left join anchors on assessments.usubjid = anchors.usubjid

)

select *
from checked
where problem is not null

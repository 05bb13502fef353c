{{ config(alias='tumor_assessments') }}

-- Assessments without calendar dates (study days instead), visit labels or
-- reader names: for sharing beyond the study team.

with

assessments as (

    select * from {{ ref('tumor_assessments') }}

),

final as (

    select
        studyid,
        usubjid,
        visitnum,
        study_day,
        role,
        target_sum_mm,
        target_complete,
        new_lesion_sum_mm,
        irrecist_burden_mm,
        nadir_mm,
        pct_change_from_baseline,
        pct_change_from_nadir,
        response_irrecist,
        response_recist,
        date_imputed,
        assessment_order
    from assessments

)

select * from final

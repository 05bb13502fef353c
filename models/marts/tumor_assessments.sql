with

assessments as (

    select * from {{ ref('int_assessment_responses') }}

),

final as (

    select
        studyid,
        usubjid,
        visitnum,
        visit,
        assessment_date,
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
        reader_id,
        assessment_order,
        target_lesions,
        new_lesion_present,
        recist_nadir_mm
    from assessments

)

select * from final

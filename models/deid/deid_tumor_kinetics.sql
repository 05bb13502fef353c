{{ config(alias='tumor_kinetics') }}

-- Kinetics with the scans' study days in place of their dates.

with

kinetics as (

    select * from {{ ref('tumor_kinetics') }}

),

final as (

    select
        studyid,
        usubjid,
        evaluability,
        stop_reason,
        {{ study_day('pre_baseline_date', 'first_dose_date') }} as pre_baseline_study_day,
        {{ study_day('baseline_date', 'first_dose_date') }} as baseline_study_day,
        {{ study_day('first_evaluation_date', 'first_dose_date') }} as first_evaluation_study_day,
        s_pre_mm,
        s_baseline_mm,
        s_first_evaluation_mm,
        tgk_pre,
        tgk_post,
        tgkr,
        tgk_pre_non_positive,
        tgr_pre,
        tgr_post,
        tgr_ratio,
        delta_tgr,
        pp_pre,
        pp_post,
        ttf_months,
        response_first_evaluation_irrecist,
        response_first_evaluation_recist,
        pseudoprogression,
        hpd
    from kinetics

)

select * from final

with

kinetics as (

    select * from {{ ref('int_subject_kinetics') }}

),

primary_definition as (

    select * from {{ ref('int_hpd_classification') }}
    where definition_id = 'tgkr'

),

final as (

    select
        kinetics.studyid,
        kinetics.usubjid,
        kinetics.evaluability,
        kinetics.stop_reason,
        kinetics.first_dose_date,
        kinetics.pre_baseline_date,
        kinetics.baseline_date,
        kinetics.first_evaluation_date,
        kinetics.s_pre_mm,
        kinetics.s_baseline_mm,
        kinetics.s_first_evaluation_mm,
        kinetics.tgk_pre,
        kinetics.tgk_post,
        kinetics.tgkr,
        kinetics.tgk_pre_non_positive,
        kinetics.tgr_pre,
        kinetics.tgr_post,
        kinetics.tgr_ratio,
        kinetics.delta_tgr,
        kinetics.pp_pre,
        kinetics.pp_post,
        kinetics.ttf_months,
        kinetics.response_first_evaluation_irrecist,
        kinetics.response_first_evaluation_recist,
        kinetics.pseudoprogression,
        primary_definition.is_hpd as hpd,
        kinetics.target_sum_pre_mm,
        kinetics.target_sum_baseline_mm,
        kinetics.target_sum_first_evaluation_mm,
        kinetics.months_pre,
        kinetics.months_post,
        kinetics.pct_change_first_evaluation,
        kinetics.response_second_evaluation_irrecist
    from kinetics
    left join primary_definition on kinetics.usubjid = primary_definition.usubjid

)

select * from final

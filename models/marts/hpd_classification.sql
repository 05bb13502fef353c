with

classification as (

    select * from {{ ref('int_hpd_classification') }}

),

final as (

    select
        studyid,
        usubjid,
        definition_id,
        is_hpd,
        not_judged_reason,
        flag,
        criteria_met,
        definition_order
    from classification

)

select * from final

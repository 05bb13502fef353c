{{ config(alias='survival') }}

-- Overall survival as durations only.

with

survival as (

    select * from {{ ref('survival') }}

),

final as (

    select
        studyid,
        usubjid,
        event,
        os_months
    from survival

)

select * from final

{{ config(alias='cohort_attrition') }}

-- No dates, ages or free text: shared as it is.

with

source as (

    select * from {{ ref('cohort_attrition') }}

),

final as (

    select * from source

)

select * from final

{{ config(alias='hpd_definition_agreement') }}

-- No dates, ages or free text: shared as it is.

with

source as (

    select * from {{ ref('hpd_definition_agreement') }}

),

final as (

    select * from source

)

select * from final

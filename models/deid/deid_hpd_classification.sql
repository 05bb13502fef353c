{{ config(alias='hpd_classification') }}

-- No dates, ages or free text: shared as it is.

with

source as (

    select * from {{ ref('hpd_classification') }}

),

final as (

    select * from source

)

select * from final

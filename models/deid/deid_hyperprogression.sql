{{ config(alias='hyperprogression') }}

-- No dates, ages or free text: shared as it is.

with

source as (

    select * from {{ ref('hyperprogression') }}

),

final as (

    select * from source

)

select * from final

-- Per definition: subjects judged, called hyperprogressive, and the rate.

with

classification as (

    select * from {{ ref('int_hpd_classification') }}

),

final as (

    select
        definition_id,
        definition_order,
        cast(count(*) as {{ dbt.type_bigint() }}) as subjects,
        cast(sum(case when is_hpd is not null then 1 else 0 end) as {{ dbt.type_bigint() }})
            as judged,
        cast(sum(case when is_hpd then 1 else 0 end) as {{ dbt.type_bigint() }}) as hpd,
        {{ safe_ratio(
            'cast(100 * sum(case when is_hpd then 1 else 0 end) as ' ~ type_double() ~ ')',
            'sum(case when is_hpd is not null then 1 else 0 end)'
        ) }} as hpd_percent
    from classification
    group by definition_id, definition_order

)

select * from final

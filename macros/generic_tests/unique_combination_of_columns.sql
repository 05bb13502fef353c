{#- The grain of a model: no two rows share the same values of
    `combination_of_columns` (nulls compare equal, so a null key part does not
    hide a duplicate). Fails with one row per duplicated combination. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
    {{ adapter.dispatch('duplicated_combinations', 'hpd')(model, combination_of_columns | join(', ')) }}
{% endtest %}

{% macro default__duplicated_combinations(model, columns) %}

select
    {{ columns }},
    count(*) as n_rows
from {{ model }}
group by {{ columns }}
having count(*) > 1

{% endmacro %}

{#- DuckDB: grouping tens of millions of rows by several text columns costs
    twice as much as grouping them by one hash of those columns. The hashes
    seen more than once (duplicates, or rare collisions) pick the rows that
    are then grouped exactly, so the result is the same. -#}
{% macro duckdb__duplicated_combinations(model, columns) %}

with

repeated_hashes as (

    select hash({{ columns }}) as combination_hash
    from {{ model }}
    group by hash({{ columns }})
    having count(*) > 1

),

final as (

    select
        {{ columns }},
        count(*) as n_rows
    from {{ model }}
    where hash({{ columns }}) in (select combination_hash from repeated_hashes)
    group by {{ columns }}
    having count(*) > 1

)

select * from final

{% endmacro %}

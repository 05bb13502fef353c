{#- The grain of a model: no two rows share the same values of
    `combination_of_columns` (nulls compare equal, so a null key part does not
    hide a duplicate). Fails with one row per duplicated combination. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

{%- set columns = combination_of_columns | join(', ') %}

select
    {{ columns }},
    count(*) as n_rows
from {{ model }}
group by {{ columns }}
having count(*) > 1

{% endtest %}

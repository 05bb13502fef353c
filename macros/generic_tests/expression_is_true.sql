{#- A row-level rule: every row must make `expression` true. Unlike
    dbt_utils, a null result fails too, so a rule that should tolerate nulls
    says so explicitly (`x is null or ...`). With `column_name`, the
    expression is appended to the column (`column_name ~ ' ' ~ expression`). -#}
{% test expression_is_true(model, expression, column_name=none) %}

{%- set condition = (column_name ~ ' ' ~ expression) if column_name else expression %}

select *
from {{ model }}
where not coalesce({{ condition }}, false)

{% endtest %}

{#- The model has exactly `value` rows (e.g. one per attrition status).
    Fails with one row giving the actual count. -#}
{% test row_count_equals(model, value) %}

select count(*) as actual_rows
from {{ model }}
having count(*) <> {{ value }}

{% endtest %}

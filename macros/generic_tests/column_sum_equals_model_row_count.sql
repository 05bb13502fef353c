{#- The column sums to the number of rows of `compare_model` (optionally
    filtered by `compare_where`): e.g. the attrition counts add up to the
    treated subjects. An empty or all-null column sums to 0. Fails with one
    row giving both numbers. -#}
{% test column_sum_equals_model_row_count(model, column_name, compare_model, compare_where=none) %}

with

actual as (

    select coalesce(sum({{ column_name }}), 0) as actual_sum from {{ model }}

),

expected as (

    select count(*) as expected_rows
    from {{ compare_model }}
    {% if compare_where %}where {{ compare_where }}{% endif %}

)

select
    actual.actual_sum,
    expected.expected_rows
from actual
cross join expected
where actual.actual_sum <> expected.expected_rows

{% endtest %}

{#- The model has `multiplier` times as many rows as `compare_model`
    (optionally filtered by `compare_where`): e.g. one row per treated subject
    (multiplier 1) or one per subject and definition (multiplier 7). Fails with
    one row giving both counts. -#}
{% test row_count_equals_model(model, compare_model, multiplier=1, compare_where=none) %}

with

actual as (

    select count(*) as actual_rows from {{ model }}

),

expected as (

    select {{ multiplier }} * count(*) as expected_rows
    from {{ compare_model }}
    {% if compare_where %}where {{ compare_where }}{% endif %}

)

select
    actual.actual_rows,
    expected.expected_rows
from actual
cross join expected
where actual.actual_rows <> expected.expected_rows

{% endtest %}

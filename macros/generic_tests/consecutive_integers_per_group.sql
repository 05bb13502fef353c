{#- A sequence column numbers the rows of each group 1, 2, ..., n without gaps
    or repeats (e.g. interval_index per subject, step of the flowchart).
    `group_by` is a list of columns; an empty list means the whole model is
    one group. Fails with the rows whose value is not their rank. -#}
{% test consecutive_integers_per_group(model, column_name, group_by=[]) %}

with

ranked as (

    select
        {% for column in group_by %}{{ column }}, {% endfor %}
        {{ column_name }} as sequence_value,
        row_number() over (
            {% if group_by %}partition by {{ group_by | join(', ') }}{% endif %}
            order by {{ column_name }}
        ) as expected_value
    from {{ model }}

)

select *
from ranked
where sequence_value is null
    or sequence_value <> expected_value

{% endtest %}

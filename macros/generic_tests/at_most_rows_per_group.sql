{#- No group of `group_by` columns holds more than `max_rows` rows (combine
    with `config: where:` to count only some rows, e.g. the new lesions that
    count, per subject and organ). Fails with one row per oversized group. -#}
{% test at_most_rows_per_group(model, group_by, max_rows) %}

select
    {{ group_by | join(', ') }},
    count(*) as n_rows
from {{ model }}
group by {{ group_by | join(', ') }}
having count(*) > {{ max_rows }}

{% endtest %}

-- Rows in = rows used + rows rejected, checked against independent counts
-- (SPEC §4, §8): rows_read is the number of rows of the input itself (the
-- loaded export or the demo seed, before staging), rows_rejected the rows of
-- rejected_rows for the domain, and rows_used the rows that passed every
-- check (staging, then for TR the lesion and duplicate checks). Fails with
-- each domain whose numbers disagree.

{%- set domains = ['dm', 'ex', 'tu', 'tr', 'ds', 'qs', 'sc'] %}

with

expected as (

    {% for domain in domains %}
    select
        '{{ domain }}' as domain,
        (select count(*) from {{ sdtm_input(domain) }} as input_rows) as expected_rows_read,
        {% if domain == 'tr' -%}
        (select count(*) from {{ ref('int_tr_checked') }} where rejection_reason is null)
        {%- else -%}
        (select count(*) from {{ ref('stg_' ~ domain) }} where rejection_reason is null)
        {%- endif %} as expected_rows_used,
        (select count(*) from {{ ref('rejected_rows') }} where domain = '{{ domain }}')
            as expected_rows_rejected
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

reconciliation as (

    select * from {{ ref('input_reconciliation') }}

)

select
    coalesce(reconciliation.domain, expected.domain) as domain,
    reconciliation.rows_read,
    expected.expected_rows_read,
    reconciliation.rows_used,
    expected.expected_rows_used,
    reconciliation.rows_rejected,
    expected.expected_rows_rejected
from reconciliation
full outer join expected on reconciliation.domain = expected.domain
where reconciliation.domain is null
    or expected.domain is null
    or reconciliation.rows_read <> expected.expected_rows_read
    or reconciliation.rows_used <> expected.expected_rows_used
    or reconciliation.rows_rejected <> expected.expected_rows_rejected
    or expected.expected_rows_read <> expected.expected_rows_used + expected.expected_rows_rejected

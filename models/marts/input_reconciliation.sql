-- Rows in = rows used + rows rejected, per SDTM domain.

with

{%- set domains = ['dm', 'ex', 'tu', 'tr', 'ds', 'qs', 'sc'] %}

rows_read as (

    {% for domain in domains %}
    select '{{ domain }}' as domain, count(*) as rows_read
    from {{ ref('stg_' ~ domain) }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

rows_rejected as (

    select
        domain,
        count(*) as rows_rejected
    from {{ ref('rejected_rows') }}
    group by domain

),

final as (

    select
        rows_read.domain,
        rows_read.rows_read,
        rows_read.rows_read - coalesce(rows_rejected.rows_rejected, 0) as rows_used,
        coalesce(rows_rejected.rows_rejected, 0) as rows_rejected
    from rows_read
    left join rows_rejected on rows_read.domain = rows_rejected.domain

)

select * from final

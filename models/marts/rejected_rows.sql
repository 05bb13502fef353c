-- Every input row that was not used, with where it came from and the first
-- check it failed (SPEC rule 17). Rows of another reader and unused test
-- codes are used rows, not rejections.

with

{%- set domains = ['dm', 'ex', 'tu', 'tr', 'ds', 'qs', 'sc'] %}

staging_rejections as (

    {% for domain in domains %}
    select
        '{{ domain }}' as domain,
        source_file as file_name,
        source_row as row_number,
        rejection_column as column_name,
        rejection_reason as reason,
        studyid,
        usubjid
    from {{ ref('stg_' ~ domain) }}
    where rejection_reason is not null
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

lesion_rejections as (

    select
        'tr' as domain,
        source_file as file_name,
        source_row as row_number,
        rejection_column as column_name,
        rejection_reason as reason,
        studyid,
        usubjid
    from {{ ref('int_tr_checked') }}
    where rejection_reason is not null

),

final as (

    select * from staging_rejections
    union all
    select * from lesion_rejections

)

select * from final

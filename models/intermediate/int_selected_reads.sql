-- The one read used per subject (SPEC §1, rule 5): the investigator's by
-- default; with var reader = 'independent', the independent reader whose rows
-- carry TRACPTFL = Y (the one with the most accepted rows if, unusually,
-- several do). Reads are never mixed.

with

tr as (

    select * from {{ ref('int_tr_checked') }}
    where rejection_reason is null

),

{% if var('reader') == 'investigator' %}

candidates as (

    select
        usubjid,
        reader_id,
        count(*) as accepted_rows
    from tr
    where is_investigator_read
    group by usubjid, reader_id

),

{% elif var('reader') == 'independent' %}

candidates as (

    select
        usubjid,
        reader_id,
        count(*) as accepted_rows
    from tr
    where not is_investigator_read and is_accepted_read
    group by usubjid, reader_id

),

{% else %}
{{ exceptions.raise_compiler_error("var 'reader' must be 'investigator' or 'independent', not '" ~ var('reader') ~ "'") }}
{% endif %}

ranked as (

    select
        *,
        row_number() over (
            partition by usubjid
            order by accepted_rows desc, reader_id
        ) as reader_rank
    from candidates

),

final as (

    select
        usubjid,
        reader_id
    from ranked
    where reader_rank = 1

)

select * from final

-- The wide view (hyperprogression) and the primary verdict of tumor_kinetics
-- say the same as the long table (hpd_classification), subject by subject
-- and definition by definition, nulls included. Fails with each disagreeing
-- subject and definition.

with

classification as (

    select * from {{ ref('hpd_classification') }}

),

wide as (

    select * from {{ ref('hyperprogression') }}

),

kinetics as (

    select * from {{ ref('tumor_kinetics') }}

),

unpivoted as (

    {% for definition_id in hpd_definition_ids() %}
    select
        usubjid,
        '{{ definition_id }}' as definition_id,
        hpd_{{ definition_id }} as is_hpd
    from wide
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

compared as (

    select
        coalesce(unpivoted.usubjid, classification.usubjid) as usubjid,
        coalesce(unpivoted.definition_id, classification.definition_id) as definition_id,
        unpivoted.is_hpd as wide_is_hpd,
        classification.is_hpd as long_is_hpd,
        unpivoted.usubjid is not null as in_wide,
        classification.usubjid is not null as in_long
    from unpivoted
    full outer join classification
        on unpivoted.usubjid = classification.usubjid
        and unpivoted.definition_id = classification.definition_id

)

select
    compared.*,
    kinetics.hpd as tumor_kinetics_hpd
from compared
left join kinetics on compared.usubjid = kinetics.usubjid
where not compared.in_wide
    or not compared.in_long
    or compared.wide_is_hpd is distinct from compared.long_is_hpd
    or (compared.definition_id = 'tgkr' and kinetics.hpd is distinct from compared.long_is_hpd)

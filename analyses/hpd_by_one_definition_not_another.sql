-- Subjects called hyperprogressive by one definition but not by another
-- (both judged them). Choose the pair with vars, e.g.
--   dbt compile --select hpd_by_one_definition_not_another \
--     --vars '{definition_a: kim_2019, definition_b: kato_2017}'

{%- set definition_a = var('definition_a', 'tgkr') %}
{%- set definition_b = var('definition_b', 'kas_2020') %}

with

a as (

    select usubjid, is_hpd from {{ ref('hpd_classification') }}
    where definition_id = '{{ definition_a }}'

),

b as (

    select usubjid, is_hpd from {{ ref('hpd_classification') }}
    where definition_id = '{{ definition_b }}'

)

select
    k.studyid,
    k.usubjid,
    '{{ definition_a }}' as hpd_by,
    '{{ definition_b }}' as not_hpd_by,
    k.tgk_pre,
    k.tgkr,
    k.tgr_ratio,
    k.delta_tgr,
    k.response_first_evaluation_recist,
    k.ttf_months
from a
inner join b on a.usubjid = b.usubjid
inner join {{ ref('tumor_kinetics') }} as k on a.usubjid = k.usubjid
where a.is_hpd and not b.is_hpd
order by k.usubjid

-- One subject's tumor burden over time: every assessment of the chosen read
-- with its role, burden, change and responses. Choose the subject with
--   --vars '{usubjid: NCT02825940-0003}'
-- (by default the first hyperprogressive subject).

with

chosen as (

    {% if var('usubjid', none) %}
    select '{{ var("usubjid") }}' as usubjid
    {% else %}
    select min(usubjid) as usubjid from {{ ref('tumor_kinetics') }} where hpd
    {% endif %}

)

select
    a.usubjid,
    a.assessment_date,
    a.study_day,
    a.role,
    a.target_sum_mm,
    a.new_lesion_sum_mm,
    a.irrecist_burden_mm,
    a.nadir_mm,
    a.pct_change_from_baseline,
    a.response_irrecist,
    a.response_recist
from {{ ref('tumor_assessments') }} as a
inner join chosen on a.usubjid = chosen.usubjid
order by a.assessment_order

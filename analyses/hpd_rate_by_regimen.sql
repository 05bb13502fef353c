-- Hyperprogression rate per definition and regimen (PD-1, PD-L1, PD-L1 + CTLA-4, ...).

select
    c.definition_id,
    coalesce(s.regimen, 'UNKNOWN') as regimen,
    sum(case when c.is_hpd is not null then 1 else 0 end) as judged,
    sum(case when c.is_hpd then 1 else 0 end) as hpd,
    round(
        100.0 * sum(case when c.is_hpd then 1 else 0 end)
        / nullif(sum(case when c.is_hpd is not null then 1 else 0 end), 0),
        1
    ) as hpd_percent
from {{ ref('hpd_classification') }} as c
inner join {{ ref('subject_characteristics') }} as s on c.usubjid = s.usubjid
group by c.definition_id, c.definition_order, coalesce(s.regimen, 'UNKNOWN')
order by c.definition_order, regimen

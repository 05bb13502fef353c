-- Hyperprogression rate per definition and study, among the subjects each
-- definition could judge.

select
    c.definition_id,
    c.studyid,
    count(*) as treated,
    sum(case when c.is_hpd is not null then 1 else 0 end) as judged,
    sum(case when c.is_hpd then 1 else 0 end) as hpd,
    round(
        100.0 * sum(case when c.is_hpd then 1 else 0 end)
        / nullif(sum(case when c.is_hpd is not null then 1 else 0 end), 0),
        1
    ) as hpd_percent
from {{ ref('hpd_classification') }} as c
group by c.definition_id, c.definition_order, c.studyid
order by c.definition_order, c.studyid

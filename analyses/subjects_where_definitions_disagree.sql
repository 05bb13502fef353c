-- Subjects judged by at least two definitions that do not all agree: which
-- definitions call them hyperprogressive, which do not, and their kinetics.

with

judged as (

    select * from {{ ref('hpd_classification') }}
    where is_hpd is not null

),

disagreeing as (

    select usubjid
    from judged
    group by usubjid
    having count(*) >= 2
        and sum(case when is_hpd then 1 else 0 end) between 1 and count(*) - 1

)

select
    h.*
from {{ ref('hyperprogression') }} as h
inner join disagreeing on h.usubjid = disagreeing.usubjid
order by h.usubjid

-- Time from the first dose to the first tumor evaluation, per study: the
-- paper's case reports were evaluated 0.94 to 1.4 months after the first dose.

select
    studyid,
    count(*) as subjects_evaluated,
    min({{ months_between('first_dose_date', 'first_evaluation_date') }}) as min_months,
    avg({{ months_between('first_dose_date', 'first_evaluation_date') }}) as mean_months,
    max({{ months_between('first_dose_date', 'first_evaluation_date') }}) as max_months
from {{ ref('tumor_kinetics') }}
where first_evaluation_date is not null
group by studyid
order by studyid

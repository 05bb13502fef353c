-- cohort_attrition (SPEC rule 16) counts every treated subject of
-- tumor_kinetics once, at its evaluability status, and n_remaining is the
-- number of subjects at that step or a later one. Fails with each status
-- whose counts disagree, including a status of tumor_kinetics missing here.

with

kinetics_counts as (

    select
        evaluability as status,
        count(*) as expected_n
    from {{ ref('tumor_kinetics') }}
    group by evaluability

),

attrition as (

    select * from {{ ref('cohort_attrition') }}

),

compared as (

    select
        coalesce(attrition.status, kinetics_counts.status) as status,
        attrition.step,
        attrition.n,
        attrition.n_remaining,
        coalesce(kinetics_counts.expected_n, 0) as expected_n,
        sum(coalesce(kinetics_counts.expected_n, 0)) over (
            order by attrition.step
            rows between current row and unbounded following
        ) as expected_n_remaining
    from attrition
    full outer join kinetics_counts on attrition.status = kinetics_counts.status

)

select *
from compared
where step is null
    or n <> expected_n
    or n_remaining <> expected_n_remaining

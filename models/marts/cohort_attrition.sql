-- The flowchart (SPEC rule 16, the paper's Figure 1): one row per
-- evaluability status, in order, zeros included; `n_remaining` is the
-- number of subjects still in before that step.

with

kinetics as (

    select * from {{ ref('int_subject_kinetics') }}

),

{%- set statuses = ['no_baseline_scan', 'no_first_evaluation', 'no_pre_baseline_scan', 'incomplete_measurements', 'evaluable'] %}

steps as (

    {% for status in statuses %}
    select {{ loop.index }} as step, '{{ status }}' as status
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

counts as (

    select
        steps.step,
        steps.status,
        cast(count(kinetics.usubjid) as {{ dbt.type_bigint() }}) as n
    from steps
    left join kinetics on steps.status = kinetics.evaluability
    group by steps.step, steps.status

),

final as (

    select
        step,
        status,
        n,
        cast(
            sum(n) over (order by step rows between current row and unbounded following)
            as {{ dbt.type_bigint() }}
        ) as n_remaining
    from counts

)

select * from final

-- Consecutive complete assessments from the pre-baseline on (SPEC rule 15),
-- with the growth between them.

with

assessments as (

    select * from {{ ref('int_assessment_responses') }}
    where target_complete
        and role in ('pre_baseline', 'baseline', 'first_evaluation', 'follow_up')

),

chained as (

    select
        studyid,
        usubjid,
        role as from_role,
        assessment_date as from_date,
        irrecist_burden_mm as burden_from_mm,
        target_sum_mm as target_sum_from_mm,
        lead(role) over (partition by usubjid order by assessment_order) as to_role,
        lead(assessment_date) over (partition by usubjid order by assessment_order) as to_date,
        lead(irrecist_burden_mm) over (partition by usubjid order by assessment_order)
            as burden_to_mm,
        lead(target_sum_mm) over (partition by usubjid order by assessment_order)
            as target_sum_to_mm,
        cast(row_number() over (partition by usubjid order by assessment_order) as {{ dbt.type_bigint() }})
            as interval_index
    from assessments

),

final as (

    select
        studyid,
        usubjid,
        interval_index,
        from_role,
        to_role,
        from_date,
        to_date,
        {{ days_between('from_date', 'to_date') }} as days,
        {{ months_between('from_date', 'to_date') }} as months,
        burden_from_mm,
        burden_to_mm,
        {{ safe_ratio('burden_to_mm - burden_from_mm', months_between('from_date', 'to_date')) }}
            as tgk,
        {{ tgr('target_sum_from_mm', 'target_sum_to_mm', months_between('from_date', 'to_date')) }}
            as tgr,
        target_sum_from_mm,
        target_sum_to_mm
    from chained
    where to_date is not null

)

select * from final

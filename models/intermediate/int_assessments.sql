-- One row per subject and tumor assessment of the chosen read: the
-- subject's VISITNUM groups of TR rows (VISIT when VISITNUM is blank, the
-- date when both are). Its date is the earliest full date among its rows, an
-- imputed one only when it has none (SPEC rule 2).

with

results as (

    select * from {{ ref('int_lesion_results') }}

),

grouped as (

    select
        studyid,
        usubjid,
        reader_id,
        assessment_key,
        min(visitnum) as visitnum,
        min(visit) as visit,
        min(case when not result_date_imputed then result_date end) as earliest_full_date,
        min(case when result_date_imputed then result_date end) as earliest_imputed_date
    from results
    group by studyid, usubjid, reader_id, assessment_key

),

dated as (

    select
        studyid,
        usubjid,
        reader_id,
        assessment_key,
        visitnum,
        visit,
        coalesce(earliest_full_date, earliest_imputed_date) as assessment_date,
        (earliest_full_date is null and earliest_imputed_date is not null) as date_imputed
    from grouped

),

final as (

    select
        *,
        -- Date order; assessments on one date are ordered by numeric VISITNUM.
        -- (row_number is an int on Spark, a bigint elsewhere.)
        cast(row_number() over (
            partition by usubjid
            order by
                case when assessment_date is null then 1 else 0 end,
                assessment_date,
                case when visitnum is null then 1 else 0 end,
                visitnum,
                assessment_key
        ) as {{ dbt.type_bigint() }}) as assessment_order
    from dated

)

select * from final

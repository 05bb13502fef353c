-- Time to treatment failure (SPEC §2, rules 11-12): from the first dose to
-- the earliest discontinuation, else to death. A discontinuation is a DS row
-- dated on or after the first dose, a DISPOSITION EVENT (or with no DSCAT and
-- a DSDECOD that is not a protocol milestone), and not COMPLETED or SCREEN
-- FAILURE. Neither known: treatment is ongoing and TTF is null.

with

subjects as (

    select * from {{ ref('int_subjects') }}
    where is_treated

),

ds as (

    select * from {{ ref('stg_ds') }}
    where rejection_reason is null

),

discontinuations as (

    select
        ds.usubjid,
        ds.event_date,
        ds.dsdecod,
        row_number() over (
            partition by ds.usubjid
            order by ds.event_date, ds.source_row
        ) as discontinuation_rank
    from ds
    inner join subjects on ds.usubjid = subjects.usubjid
    where ds.event_date >= subjects.first_dose_date
        and (
            ds.dscat = 'DISPOSITION EVENT'
            or (
                ds.dscat is null
                and ds.dsdecod not in ('INFORMED CONSENT OBTAINED', 'RANDOMIZED', 'ENROLLED')
            )
        )
        and ds.dsdecod not in ('COMPLETED', 'SCREEN FAILURE')

),

first_discontinuation as (

    select * from discontinuations
    where discontinuation_rank = 1

),

final as (

    select
        subjects.usubjid,
        first_discontinuation.event_date as discontinuation_date,
        first_discontinuation.dsdecod as discontinuation_reason,
        coalesce(
            first_discontinuation.dsdecod,
            case when subjects.died then 'DEATH' end
        ) as stop_reason,
        coalesce(first_discontinuation.event_date, subjects.death_date) as treatment_failure_date,
        {{ months_between(
            'subjects.first_dose_date',
            'coalesce(first_discontinuation.event_date, subjects.death_date)'
        ) }} as ttf_months
    from subjects
    left join first_discontinuation on subjects.usubjid = first_discontinuation.usubjid

)

select * from final

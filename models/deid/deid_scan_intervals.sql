{{ config(alias='scan_intervals') }}

-- Scan intervals with study days in place of dates.

with

intervals as (

    select * from {{ ref('scan_intervals') }}

),

kinetics as (

    select * from {{ ref('tumor_kinetics') }}

),

final as (

    select
        intervals.studyid,
        intervals.usubjid,
        intervals.interval_index,
        intervals.from_role,
        intervals.to_role,
        {{ study_day('intervals.from_date', 'kinetics.first_dose_date') }} as from_study_day,
        {{ study_day('intervals.to_date', 'kinetics.first_dose_date') }} as to_study_day,
        intervals.days,
        intervals.months,
        intervals.burden_from_mm,
        intervals.burden_to_mm,
        intervals.tgk,
        intervals.tgr
    from intervals
    inner join kinetics on intervals.usubjid = kinetics.usubjid

)

select * from final

-- One row per subject of DM: first dose and death (SPEC §2, rule 12).

with

dm as (

    select * from {{ ref('stg_dm') }}
    where rejection_reason is null

),

ex as (

    select * from {{ ref('stg_ex') }}
    where rejection_reason is null

),

ds as (

    select * from {{ ref('stg_ds') }}
    where rejection_reason is null

),

exposure_start as (

    select
        usubjid,
        min(start_date) as first_exposure_date
    from ex
    group by usubjid

),

ds_deaths as (

    select
        usubjid,
        min(event_date) as ds_death_date
    from ds
    where dsdecod = 'DEATH'
    group by usubjid

),

final as (

    select
        dm.studyid,
        dm.usubjid,
        dm.sex,
        dm.age,
        dm.arm,
        -- The earliest EX start; DM.RFXSTDTC only for a subject without EX rows.
        coalesce(exposure_start.first_exposure_date, dm.reference_first_dose_date) as first_dose_date,
        case
            when exposure_start.first_exposure_date is not null then 'EX'
            when dm.reference_first_dose_date is not null then 'DM'
        end as first_dose_source,
        coalesce(exposure_start.first_exposure_date, dm.reference_first_dose_date) is not null
            as is_treated,
        coalesce(dm.death_date, ds_deaths.ds_death_date) as death_date,
        (dm.death_flag or dm.death_date is not null or ds_deaths.usubjid is not null) as died,
        dm.reference_end_date
    from dm
    left join exposure_start on dm.usubjid = exposure_start.usubjid
    left join ds_deaths on dm.usubjid = ds_deaths.usubjid

)

select * from final

-- Overall survival per treated subject (SPEC §4, rule 12): months from the
-- first dose to death, else to the last contact (the latest of RFPENDTC, the
-- first dose, and the assessment, EX, DS and QS dates). A death without a date is an event
-- with unknown time.

with

subjects as (

    select * from {{ ref('int_subjects') }}
    where is_treated

),

contact_dates as (

    select usubjid, reference_end_date as contact_date
    from subjects
    union all
    select usubjid, first_dose_date from subjects
    union all
    select usubjid, result_date from {{ ref('stg_tr') }} where rejection_reason is null
    union all
    select usubjid, start_date from {{ ref('stg_ex') }} where rejection_reason is null
    union all
    select usubjid, end_date from {{ ref('stg_ex') }} where rejection_reason is null
    union all
    select usubjid, event_date from {{ ref('stg_ds') }} where rejection_reason is null
    union all
    select usubjid, assessment_date from {{ ref('stg_qs') }} where rejection_reason is null

),

last_contact as (

    select
        usubjid,
        max(contact_date) as last_contact_date
    from contact_dates
    group by usubjid

),

final as (

    select
        subjects.studyid,
        subjects.usubjid,
        subjects.first_dose_date,
        subjects.death_date,
        last_contact.last_contact_date,
        subjects.died as event,
        case
            when subjects.died then {{ months_between('subjects.first_dose_date', 'subjects.death_date') }}
            else {{ months_between('subjects.first_dose_date', 'last_contact.last_contact_date') }}
        end as os_months
    from subjects
    left join last_contact on subjects.usubjid = last_contact.usubjid

)

select * from final

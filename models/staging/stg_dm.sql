with

source as (

    select * from {{ sdtm_input('dm') }} as sdtm_rows

),

parsed as (

    select
        studyid,
        usubjid,
        upper(sex) as sex,
        {{ try_cast_number('age') }} as age,
        {{ sdtm_date('rfxstdtc') }} as reference_first_dose_date,
        {{ sdtm_date('rfpendtc') }} as reference_end_date,
        {{ sdtm_date('dthdtc') }} as death_date,
        coalesce(upper(dthfl) = 'Y', false) as death_flag,
        arm,
        source_file,
        source_row,
        {{ first_failed_check(
            missing_value_checks(['studyid', 'usubjid'])
            + invalid_date_checks(['rfxstdtc', 'rfpendtc', 'dthdtc'])
            + [("age is not null and " ~ try_cast_number('age') ~ " is null", 'invalid_number', 'AGE')]
        ) }}
    from source

),

final as (

    select * from parsed

)

select * from final

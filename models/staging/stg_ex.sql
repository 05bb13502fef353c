with

source as (

    select * from {{ sdtm_input('ex') }} as sdtm_rows

),

parsed as (

    select
        studyid,
        usubjid,
        extrt as treatment,
        lower(extrt) as treatment_key,
        {{ sdtm_date('exstdtc') }} as start_date,
        {{ sdtm_date_imputed('exstdtc') }} as start_date_imputed,
        {{ sdtm_date('exendtc') }} as end_date,
        source_file,
        source_row,
        {{ first_failed_check(
            missing_value_checks(['studyid', 'usubjid', 'extrt', 'exstdtc'])
            + invalid_date_checks(['exstdtc', 'exendtc'])
        ) }}
    from source

),

final as (

    select * from parsed

)

select * from final

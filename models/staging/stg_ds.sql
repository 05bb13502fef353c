with

source as (

    select * from {{ sdtm_input('ds') }} as sdtm_rows

),

parsed as (

    select
        studyid,
        usubjid,
        upper(dsdecod) as dsdecod,
        upper(dscat) as dscat,
        dsterm,
        {{ sdtm_date('dsstdtc') }} as event_date,
        source_file,
        source_row,
        {{ first_failed_check(
            missing_value_checks(['studyid', 'usubjid', 'dsdecod', 'dsstdtc'])
            + invalid_date_checks(['dsstdtc'])
        ) }}
    from source

),

final as (

    select * from parsed

)

select * from final

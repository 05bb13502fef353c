with

source as (

    select * from {{ sdtm_input('sc') }} as sdtm_rows

),

parsed as (

    select
        studyid,
        usubjid,
        upper(sctestcd) as sctestcd,
        sctest,
        scorres,
        source_file,
        source_row,
        {{ first_failed_check(missing_value_checks(['studyid', 'usubjid', 'sctestcd', 'scorres'])) }}
    from source

),

final as (

    select * from parsed

)

select * from final

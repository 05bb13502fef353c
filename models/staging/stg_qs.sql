with

source as (

    select * from {{ sdtm_input('qs') }} as sdtm_rows

),

parsed as (

    select
        studyid,
        usubjid,
        upper(qstestcd) as qstestcd,
        -- The standard numeric result first, the original result as fallback.
        coalesce({{ try_cast_number('qsstresn') }}, {{ try_cast_number('qsorres') }}) as result_value,
        {{ sdtm_date('qsdtc') }} as assessment_date,
        source_file,
        source_row,
        {{ first_failed_check(
            missing_value_checks(['studyid', 'usubjid', 'qstestcd', 'qsdtc'])
            + invalid_date_checks(['qsdtc'])
            + [("qsstresn is not null and " ~ try_cast_number('qsstresn') ~ " is null", 'invalid_number', 'QSSTRESN')]
        ) }}
    from source

),

final as (

    select * from parsed

)

select * from final

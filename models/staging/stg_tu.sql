with

source as (

    select * from {{ sdtm_input('tu') }} as sdtm_rows

),

parsed as (

    select
        studyid,
        usubjid,
        {{ reader_id('tueval', 'tuevalid') }} as reader_id,
        {{ is_investigator('tueval') }} as is_investigator_read,
        tulnkid as lesion_id,
        -- SPEC rule 4: the class is the standardised result, else the original.
        upper(coalesce(tustresc, tuorres)) as lesion_class,
        coalesce(upper(tuloc), 'UNKNOWN') as organ,
        coalesce(upper(tuloc) = 'LYMPH NODE', false) as is_nodal,
        {{ try_cast_number('visitnum') }} as visitnum,
        visit,
        {{ sdtm_date('tudtc') }} as identification_date,
        source_file,
        source_row,
        {{ first_failed_check(
            missing_value_checks(['studyid', 'usubjid', 'tulnkid', 'tuorres'])
            + invalid_date_checks(['tudtc'])
            + [("visitnum is not null and " ~ try_cast_number('visitnum') ~ " is null", 'invalid_number', 'VISITNUM')]
        ) }}
    from source

),

final as (

    select * from parsed

)

select * from final

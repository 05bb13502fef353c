with

source as (

    select * from {{ sdtm_input('tr') }} as sdtm_rows

),

numbers as (

    -- SPEC rule 4: a number is taken with its own unit, as a pair: the
    -- standard result first, the original result as fallback.
    select
        *,
        {{ try_cast_number('trstresn') }} as standard_number,
        {{ try_cast_number('trorres') }} as original_number
    from source

),

paired as (

    select
        *,
        upper(trtestcd) in ('LDIAM', 'LPERP') as is_diameter_test,
        coalesce(upper(trstat) = 'NOT DONE', false) as is_not_done,
        coalesce(upper(trstresc) in ('ABSENT', 'NOT PRESENT'), false) as is_absent,
        case
            when standard_number is not null then standard_number
            else original_number
        end as result_number,
        case
            when standard_number is not null then lower(coalesce(trstresu, ''))
            when original_number is not null then lower(coalesce(trorresu, ''))
        end as result_unit,
        case
            when standard_number is not null then 'TRSTRESU'
            when original_number is not null then 'TRORRESU'
        end as unit_column,
        case
            when standard_number is not null then 'TRSTRESN'
            when original_number is not null then 'TRORRES'
        end as number_column
    from numbers

),

measured as (

    select
        *,
        -- Only diameters are summed; their number counts when the lesion was
        -- assessed (not NOT DONE) and not recorded absent (SPEC rule 4).
        (is_diameter_test and not is_not_done and not is_absent and result_number is not null)
            as uses_number
    from paired

),

parsed as (

    select
        studyid,
        usubjid,
        {{ reader_id('treval', 'trevalid') }} as reader_id,
        {{ is_investigator('treval') }} as is_investigator_read,
        coalesce(upper(tracptfl) = 'Y', false) as is_accepted_read,
        trlnkid as lesion_id,
        upper(trtestcd) as test_code,
        {{ try_cast_number('visitnum') }} as visitnum,
        visit,
        {{ assessment_key(try_cast_number('visitnum'), 'visit', 'trdtc') }} as assessment_key,
        {{ sdtm_date('trdtc') }} as result_date,
        {{ sdtm_date_imputed('trdtc') }} as result_date_imputed,
        case
            when not is_diameter_test or is_not_done then null
            when is_absent then cast(0 as {{ type_double() }})
            when uses_number and result_unit = 'cm' then result_number * 10
            when uses_number then result_number
        end as result_mm,
        -- The lesion state of TUMSTATE rows; UNEQUIVOCAL PROGRESSION is
        -- UNEQUIVOCAL and NOT PRESENT is ABSENT (SPEC rule 4).
        case
            when upper(trtestcd) <> 'TUMSTATE' or is_not_done then null
            when upper(trstresc) = 'UNEQUIVOCAL PROGRESSION' then 'UNEQUIVOCAL'
            when upper(trstresc) = 'NOT PRESENT' then 'ABSENT'
            else upper(trstresc)
        end as lesion_state,
        source_file,
        source_row,
        {{ first_failed_check(
            missing_value_checks(['studyid', 'usubjid', 'trlnkid', 'trtestcd'])
            + [("visitnum is null and visit is null and trdtc is null", 'missing_value', 'TRDTC')]
            + invalid_date_checks(['trdtc'])
            + [("visitnum is not null and " ~ try_cast_number('visitnum') ~ " is null", 'invalid_number', 'VISITNUM')]
            + [("trstresn is not null and standard_number is null and is_diameter_test and not is_not_done and not is_absent", 'invalid_number', 'TRSTRESN')]
            + [("uses_number and result_unit not in ('mm', 'cm', '')", 'invalid_unit', 'sql:unit_column')]
            + [("uses_number and result_number < 0", 'negative_result', 'sql:number_column')]
        ) }}
    from measured

),

final as (

    select * from parsed

)

select * from final

-- Every TR row that passed staging, with the lesion it measures and the checks
-- that need other rows: the lesion must be identified in TU by the same reader
-- (ids as written, SPEC rule 5), and one lesion is measured once per test,
-- assessment and reader (SPEC rule 6: the latest-dated row wins, then the
-- last in the file). Rows failing either keep their reason for rejected_rows.

with

tr as (

    select * from {{ ref('stg_tr') }}
    where rejection_reason is null

),

lesions as (

    select * from {{ ref('int_tu_lesions') }}

),

joined as (

    select
        tr.studyid,
        tr.usubjid,
        tr.reader_id,
        tr.is_investigator_read,
        tr.is_accepted_read,
        tr.lesion_id,
        tr.test_code,
        tr.visitnum,
        tr.visit,
        tr.assessment_key,
        tr.result_date,
        tr.result_date_imputed,
        tr.result_mm,
        tr.lesion_state,
        tr.source_file,
        tr.source_row,
        lesions.lesion_class,
        lesions.organ,
        lesions.is_nodal,
        lesions.lesion_id is not null as is_identified
    from tr
    left join lesions
        on tr.usubjid = lesions.usubjid
        and tr.reader_id = lesions.reader_id
        and tr.lesion_id = lesions.lesion_id

),

ranked as (

    select
        *,
        case
            when is_identified then row_number() over (
                partition by usubjid, reader_id, assessment_key, lesion_id, test_code, is_identified
                order by
                    case when result_date is null then 1 else 0 end,
                    result_date desc,
                    source_row desc
            )
        end as measurement_rank
    from joined

),

final as (

    select
        *,
        case
            when not is_identified then 'unknown_lesion'
            when measurement_rank > 1 then 'duplicate'
        end as rejection_reason,
        case
            when not is_identified then 'TRLNKID'
        end as rejection_column
    from ranked

)

select * from final

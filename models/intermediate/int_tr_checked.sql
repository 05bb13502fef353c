-- Every TR row that passed staging, with the lesion it measures and the checks
-- that need other rows: the lesion must be identified in TU by the same reader
-- (ids as written, SPEC rule 5), and one lesion is measured once per test,
-- assessment and reader (SPEC rule 6: the latest-dated row wins, then the
-- last in the file). Rows failing either keep their reason for rejected_rows.

{#- Rule 6's key: one measurement per lesion, test, assessment and reader. #}
{%- set measurement_key = ['usubjid', 'reader_id', 'assessment_key', 'lesion_id', 'test_code'] | join(', ') %}

with

tr as (

    select * from {{ ref('stg_tr') }}
    where rejection_reason is null

),

lesions as (

    select * from {{ ref('int_tu_lesions') }}

),

-- The same staged rows, imported again for each further read: DuckDB and
-- PostgreSQL materialize a CTE that is read more than once, which at tens
-- of millions of rows costs more than scanning the table again.
measurement_keys as (

    select {{ measurement_key }}
    from {{ ref('stg_tr') }}
    where rejection_reason is null

),

measurement_order as (

    select
        {{ measurement_key }},
        result_date,
        source_file,
        source_row
    from {{ ref('stg_tr') }}
    where rejection_reason is null

),

-- Rule 6 concerns a lesion measured more than once by one test at one
-- assessment: only those (rare) rows are ranked; every other row is the
-- only one of its kind.
repeated_keys as (

    select {{ measurement_key }}
    from measurement_keys
    group by {{ measurement_key }}
    having count(*) > 1

),

repeated_ranks as (

    select
        source_file,
        source_row,
        row_number() over (
            partition by {{ measurement_key }}
            order by
                case when result_date is null then 1 else 0 end,
                result_date desc,
                source_row desc
        ) as measurement_rank
    from measurement_order
    inner join repeated_keys using ({{ measurement_key }})

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
        lesions.lesion_id is not null as is_identified,
        -- A lesion's identification is per subject, reader and id, so all
        -- rows of a repeated key are identified or none is.
        case
            when lesions.lesion_id is not null then coalesce(repeated_ranks.measurement_rank, 1)
        end as measurement_rank
    from tr
    left join lesions
        on tr.usubjid = lesions.usubjid
        and tr.reader_id = lesions.reader_id
        and tr.lesion_id = lesions.lesion_id
    left join repeated_ranks
        on tr.source_file = repeated_ranks.source_file
        and tr.source_row = repeated_ranks.source_row

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
    from joined

)

select * from final

-- The results of the chosen read that the derivations use: each lesion's own
-- diameter (short axis LPERP for nodal lesions, LDIAM for all others) and the
-- lesion states of TUMSTATE rows. Other test codes (DIAMETER, SUMDIAM, VOLUME)
-- are kept in TR but not used for sums (SPEC §1).

with

tr as (

    select * from {{ ref('int_tr_checked') }}
    where rejection_reason is null

),

selected_reads as (

    select * from {{ ref('int_selected_reads') }}

),

final as (

    select
        tr.studyid,
        tr.usubjid,
        tr.reader_id,
        tr.lesion_id,
        tr.lesion_class,
        tr.organ,
        tr.is_nodal,
        tr.test_code,
        tr.visitnum,
        tr.visit,
        tr.assessment_key,
        tr.result_date,
        tr.result_date_imputed,
        case
            when tr.test_code = case when tr.is_nodal then 'LPERP' else 'LDIAM' end
                then tr.result_mm
        end as diameter_mm,
        tr.lesion_state
    from tr
    inner join selected_reads
        on tr.usubjid = selected_reads.usubjid
        and tr.reader_id = selected_reads.reader_id
    where tr.test_code in ('LDIAM', 'LPERP', 'TUMSTATE')

)

select * from final

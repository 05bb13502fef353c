-- One row per lesion as one reader identified it. A lesion's class and organ
-- come from its first identification row (SPEC rule 4): the earliest dated,
-- then the lowest VISITNUM, then the first in the file.

with

tu as (

    select * from {{ ref('stg_tu') }}
    where rejection_reason is null

),

ranked as (

    select
        *,
        row_number() over (
            partition by usubjid, reader_id, lesion_id
            order by
                case when identification_date is null then 1 else 0 end,
                identification_date,
                case when visitnum is null then 1 else 0 end,
                visitnum,
                source_row
        ) as identification_rank
    from tu

),

final as (

    select
        studyid,
        usubjid,
        reader_id,
        lesion_id,
        lesion_class,
        organ,
        is_nodal,
        identification_date
    from ranked
    where identification_rank = 1

)

select * from final

-- The target lesions at each assessment (SPEC §2): the sum of the available
-- target diameters, whether every target was measured (complete; 0 mm counts),
-- and whether all targets have resolved (non-nodal 0 mm, nodal short axis
-- below `response_cr_nodal_mm`) for complete response. The baseline targets
-- define the burden at every assessment, the pre-baseline one included.

with

assessments as (

    select * from {{ ref('int_assessments') }}

),

lesions as (

    select * from {{ ref('int_tu_lesions') }}
    where lesion_class = 'TARGET'

),

results as (

    select * from {{ ref('int_lesion_results') }}
    where lesion_class = 'TARGET' and diameter_mm is not null

),

target_grid as (

    select
        assessments.usubjid,
        assessments.assessment_key,
        lesions.lesion_id,
        lesions.is_nodal
    from assessments
    inner join lesions
        on assessments.usubjid = lesions.usubjid
        and assessments.reader_id = lesions.reader_id

),

measured as (

    select
        target_grid.usubjid,
        target_grid.assessment_key,
        target_grid.lesion_id,
        target_grid.is_nodal,
        results.diameter_mm
    from target_grid
    left join results
        on target_grid.usubjid = results.usubjid
        and target_grid.assessment_key = results.assessment_key
        and target_grid.lesion_id = results.lesion_id

),

summed as (

    select
        usubjid,
        assessment_key,
        count(*) as target_lesions,
        count(diameter_mm) as targets_measured,
        {{ exact_sum("diameter_mm") }} as target_sum_mm,
        sum(
            case
                when diameter_mm is null then 1
                when is_nodal and not {{ less_than('diameter_mm', var('response_cr_nodal_mm')) }} then 1
                when not is_nodal and diameter_mm > 0 then 1
                else 0
            end
        ) as targets_not_resolved
    from measured
    group by usubjid, assessment_key

),

final as (

    select
        assessments.usubjid,
        assessments.assessment_key,
        coalesce(summed.target_lesions, 0) as target_lesions,
        coalesce(summed.targets_measured, 0) as targets_measured,
        summed.target_sum_mm,
        coalesce(summed.target_lesions > 0 and summed.targets_measured = summed.target_lesions, false)
            as target_complete,
        coalesce(summed.target_lesions > 0 and summed.targets_not_resolved = 0, false)
            as targets_resolved
    from assessments
    left join summed
        on assessments.usubjid = summed.usubjid
        and assessments.assessment_key = summed.assessment_key

)

select * from final

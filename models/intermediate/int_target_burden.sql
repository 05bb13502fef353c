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

-- Counted apart, not through a grid of assessments by target lesions (at
-- millions of assessments the costliest join there would be): a target's
-- result is its own test's diameter, at most one per lesion and assessment
-- (int_lesion_results), so the targets not counted in `measured` are the
-- unmeasured ones.
target_counts as (

    select
        usubjid,
        reader_id,
        count(*) as target_lesions
    from lesions
    group by usubjid, reader_id

),

measured as (

    select
        usubjid,
        assessment_key,
        count(*) as targets_measured,
        {{ exact_sum("diameter_mm") }} as target_sum_mm,
        sum(
            case
                when is_nodal and not {{ less_than('diameter_mm', var('response_cr_nodal_mm')) }} then 1
                when not is_nodal and diameter_mm > 0 then 1
                else 0
            end
        ) as measured_not_resolved
    from results
    group by usubjid, assessment_key

),

counted as (

    select
        assessments.usubjid,
        assessments.assessment_key,
        coalesce(target_counts.target_lesions, 0) as target_lesions,
        coalesce(measured.targets_measured, 0) as targets_measured,
        measured.target_sum_mm,
        coalesce(measured.measured_not_resolved, 0) as measured_not_resolved
    from assessments
    left join target_counts
        on assessments.usubjid = target_counts.usubjid
        and assessments.reader_id = target_counts.reader_id
    left join measured
        on assessments.usubjid = measured.usubjid
        and assessments.assessment_key = measured.assessment_key

),

final as (

    select
        usubjid,
        assessment_key,
        target_lesions,
        targets_measured,
        target_sum_mm,
        target_lesions > 0 and targets_measured = target_lesions as target_complete,
        -- An unmeasured target is not resolved.
        target_lesions > 0
            and target_lesions - targets_measured + measured_not_resolved = 0 as targets_resolved
    from counted

)

select * from final

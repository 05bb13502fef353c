-- New lesions of the chosen read and whether they count in the irRECIST
-- burden (SPEC §2, rule 8). A new lesion is measurable at an assessment after
-- the first dose when its diameter is at least `new_lesion_measurable_mm`
-- (nodal short axis: `new_lesion_measurable_nodal_mm`). The lesions that count
-- fill `new_lesions_max` slots, at most `new_lesions_max_per_organ` per organ,
-- in order of first measurability date, then size (largest first), then id;
-- a counted lesion never leaves.

with

roles as (

    select * from {{ ref('int_assessment_roles') }}

),

results as (

    select * from {{ ref('int_lesion_results') }}
    where lesion_class = 'NEW' and diameter_mm is not null

),

measurable as (

    select
        results.usubjid,
        results.lesion_id,
        results.organ,
        results.diameter_mm,
        roles.assessment_date,
        roles.assessment_order
    from results
    inner join roles
        on results.usubjid = roles.usubjid
        and results.assessment_key = roles.assessment_key
    where roles.is_post_dose
        and case
            when results.is_nodal
                then {{ at_least('results.diameter_mm', var('new_lesion_measurable_nodal_mm')) }}
            else {{ at_least('results.diameter_mm', var('new_lesion_measurable_mm')) }}
        end

),

first_measurable as (

    select
        usubjid,
        lesion_id,
        organ,
        assessment_date as first_measurable_date,
        assessment_order as first_measurable_order,
        diameter_mm as first_measurable_mm
    from (
        select
            *,
            row_number() over (
                partition by usubjid, lesion_id
                order by assessment_order
            ) as measurable_rank
        from measurable
    ) as ranked
    where measurable_rank = 1

),

organ_slots as (

    select
        *,
        row_number() over (
            partition by usubjid, organ
            order by first_measurable_date, first_measurable_mm desc, lesion_id
        ) as organ_slot
    from first_measurable

),

slots as (

    select
        *,
        case
            when organ_slot <= {{ var('new_lesions_max_per_organ') }}
                then row_number() over (
                    partition by usubjid, organ_slot <= {{ var('new_lesions_max_per_organ') }}
                    order by first_measurable_date, first_measurable_mm desc, lesion_id
                )
        end as subject_slot
    from organ_slots

),

final as (

    select
        usubjid,
        lesion_id,
        organ,
        first_measurable_date,
        first_measurable_order,
        first_measurable_mm,
        coalesce(subject_slot <= {{ var('new_lesions_max') }}, false) as is_counted
    from slots

)

select * from final

-- Lo Russo's new-lesion criteria (SPEC rule 14), per subject: the new
-- lesions present at the first evaluation counted per organ (TULOC), against
-- the organs that held a target or non-target lesion at baseline. An organ
-- UNKNOWN never counts.

with

roles as (

    select * from {{ ref('int_assessment_roles') }}
    where role = 'first_evaluation'

),

results as (

    select * from {{ ref('int_lesion_results') }}

),

lesions as (

    select * from {{ ref('int_tu_lesions') }}

),

baseline_organs as (

    select distinct
        lesions.usubjid,
        lesions.organ
    from lesions
    inner join roles
        on lesions.usubjid = roles.usubjid
        and lesions.reader_id = roles.reader_id
    where lesions.lesion_class in ('TARGET', 'NON-TARGET')
        and lesions.organ <> 'UNKNOWN'

),

new_present as (

    select
        results.usubjid,
        results.organ,
        count(distinct results.lesion_id) as new_lesions_present
    from results
    inner join roles
        on results.usubjid = roles.usubjid
        and results.assessment_key = roles.assessment_key
    where results.lesion_class = 'NEW'
        and results.organ <> 'UNKNOWN'
        and (results.diameter_mm > 0 or results.lesion_state in ('PRESENT', 'UNEQUIVOCAL'))
    group by results.usubjid, results.organ

),

per_organ as (

    select
        new_present.usubjid,
        new_present.organ,
        new_present.new_lesions_present,
        baseline_organs.organ is not null as involved_at_baseline
    from new_present
    left join baseline_organs
        on new_present.usubjid = baseline_organs.usubjid
        and new_present.organ = baseline_organs.organ

),

final as (

    select
        usubjid,
        sum(case when involved_at_baseline and new_lesions_present >= 2 then 1 else 0 end) > 0
            as new_lesions_in_involved_organ,
        sum(case when not involved_at_baseline then 1 else 0 end) > 0
            as new_lesion_in_new_organ
    from per_organ
    group by usubjid

)

select * from final

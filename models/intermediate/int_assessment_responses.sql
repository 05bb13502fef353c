-- Responses at each assessment after the first dose, two ways (SPEC §2,
-- rule 7), decided in the order PD, CR, PR, SD; NE when the assessment or
-- the baseline is incomplete. irRECIST compares the burden with its nadir;
-- RECIST 1.1 the target sum with its own nadir, and any new lesion present
-- is progression.

with

burden as (

    select * from {{ ref('int_assessment_burden') }}

),

changes as (

    select
        *,
        case
            when is_post_dose and baseline_burden_mm <> 0
                then 100.0 * (irrecist_burden_mm - baseline_burden_mm) / baseline_burden_mm
        end as pct_change_from_baseline,
        case
            when is_post_dose and nadir_mm <> 0
                then 100.0 * (irrecist_burden_mm - nadir_mm) / nadir_mm
        end as pct_change_from_nadir,
        is_post_dose and target_complete and baseline_complete as is_judged
    from burden

),

final as (

    select
        *,
        case
            when not is_post_dose then null
            when not is_judged then 'NE'
            when non_target_unequivocal
                or (
                    {{ at_least('irrecist_burden_mm', var('response_pd_ratio') ~ ' * nadir_mm') }}
                    and {{ at_least('irrecist_burden_mm - nadir_mm', var('response_pd_min_increase_mm')) }}
                ) then 'PD'
            when targets_resolved and not new_lesion_present and non_targets_all_absent then 'CR'
            when {{ at_most('irrecist_burden_mm', var('response_pr_ratio') ~ ' * baseline_burden_mm') }}
                then 'PR'
            else 'SD'
        end as response_irrecist,
        case
            when not is_post_dose then null
            when not is_judged then 'NE'
            when non_target_unequivocal
                or new_lesion_present
                or (
                    {{ at_least('target_sum_mm', var('response_pd_ratio') ~ ' * recist_nadir_mm') }}
                    and {{ at_least('target_sum_mm - recist_nadir_mm', var('response_pd_min_increase_mm')) }}
                ) then 'PD'
            when targets_resolved and non_targets_all_absent then 'CR'
            when {{ at_most('target_sum_mm', var('response_pr_ratio') ~ ' * baseline_target_sum_mm') }}
                then 'PR'
            else 'SD'
        end as response_recist
    from changes

)

select * from final

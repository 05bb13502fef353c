-- The tumor burden at each assessment of the chosen read (SPEC §2):
-- target sum, the counted new lesions measured there (from their first
-- measurable assessment on, after the first dose), the irRECIST burden,
-- the lesion states responses need, the nadirs and the changes from
-- baseline and nadir, computed from the burden as measured (ADTR-like).

with

roles as (

    select * from {{ ref('int_assessment_roles') }}

),

target_burden as (

    select * from {{ ref('int_target_burden') }}

),

new_lesions as (

    select * from {{ ref('int_new_lesions') }}
    where is_counted

),

-- Each further read of a model is its own import: DuckDB and PostgreSQL
-- materialize a CTE that is read more than once, which at millions of rows
-- costs more than scanning the table again.
post_dose_roles as (

    select * from {{ ref('int_assessment_roles') }}
    where is_post_dose

),

new_lesion_results as (

    select * from {{ ref('int_lesion_results') }}
    where lesion_class = 'NEW' and diameter_mm is not null

),

-- Target rows, most of them, count in none of the lesion states.
state_results as (

    select * from {{ ref('int_lesion_results') }}
    where lesion_class in ('NEW', 'NON-TARGET')

),

non_target_lesions as (

    select
        usubjid,
        reader_id,
        count(*) as non_target_lesions
    from {{ ref('int_tu_lesions') }}
    where lesion_class = 'NON-TARGET'
    group by usubjid, reader_id

),

new_lesion_sums as (

    select
        new_lesion_results.usubjid,
        new_lesion_results.assessment_key,
        {{ exact_sum("new_lesion_results.diameter_mm") }} as new_lesion_sum_mm
    from new_lesion_results
    inner join new_lesions
        on new_lesion_results.usubjid = new_lesions.usubjid
        and new_lesion_results.lesion_id = new_lesions.lesion_id
    inner join post_dose_roles
        on new_lesion_results.usubjid = post_dose_roles.usubjid
        and new_lesion_results.assessment_key = post_dose_roles.assessment_key
    where post_dose_roles.assessment_order >= new_lesions.first_measurable_order
    group by new_lesion_results.usubjid, new_lesion_results.assessment_key

),

lesion_states as (

    select
        usubjid,
        assessment_key,
        sum(
            case
                when lesion_class = 'NEW'
                    and (diameter_mm > 0 or lesion_state in ('PRESENT', 'UNEQUIVOCAL')) then 1
                else 0
            end
        ) > 0 as new_lesion_present,
        sum(
            case when lesion_class = 'NON-TARGET' and lesion_state = 'UNEQUIVOCAL' then 1 else 0 end
        ) > 0 as non_target_unequivocal,
        sum(
            case
                when lesion_class = 'NON-TARGET' and lesion_state in ('PRESENT', 'UNEQUIVOCAL') then 1
                else 0
            end
        ) > 0 as non_target_present,
        count(
            distinct case
                when lesion_class = 'NON-TARGET' and (lesion_state = 'ABSENT' or diameter_mm = 0)
                    then lesion_id
            end
        ) as non_targets_absent
    from state_results
    group by usubjid, assessment_key

),

burden as (

    select
        roles.*,
        target_burden.target_lesions,
        target_burden.target_sum_mm,
        target_burden.target_complete,
        target_burden.targets_resolved,
        case
            when roles.is_post_dose then coalesce(new_lesion_sums.new_lesion_sum_mm, 0)
            else 0
        end as new_lesion_sum_mm,
        target_burden.target_sum_mm
            + case when roles.is_post_dose then coalesce(new_lesion_sums.new_lesion_sum_mm, 0) else 0 end
            as irrecist_burden_mm,
        coalesce(lesion_states.new_lesion_present, false) as new_lesion_present,
        coalesce(lesion_states.non_target_unequivocal, false) as non_target_unequivocal,
        coalesce(lesion_states.non_target_present, false) as non_target_present,
        coalesce(lesion_states.non_targets_absent, 0)
            = coalesce(non_target_lesions.non_target_lesions, 0) as non_targets_all_absent
    from roles
    inner join target_burden
        on roles.usubjid = target_burden.usubjid
        and roles.assessment_key = target_burden.assessment_key
    left join new_lesion_sums
        on roles.usubjid = new_lesion_sums.usubjid
        and roles.assessment_key = new_lesion_sums.assessment_key
    left join lesion_states
        on roles.usubjid = lesion_states.usubjid
        and roles.assessment_key = lesion_states.assessment_key
    left join non_target_lesions
        on roles.usubjid = non_target_lesions.usubjid
        and roles.reader_id = non_target_lesions.reader_id

),

baselines as (

    select
        usubjid,
        irrecist_burden_mm as baseline_burden_mm,
        target_sum_mm as baseline_target_sum_mm,
        target_complete as baseline_complete
    from burden
    where role = 'baseline'

),

running_minimum as (

    -- The smallest burden among the complete post-baseline assessments
    -- before each one.
    select
        burden.*,
        min(case when is_post_dose and target_complete then irrecist_burden_mm end) over (
            partition by usubjid
            order by assessment_order
            rows between unbounded preceding and 1 preceding
        ) as earlier_min_burden_mm,
        min(case when is_post_dose and target_complete then target_sum_mm end) over (
            partition by usubjid
            order by assessment_order
            rows between unbounded preceding and 1 preceding
        ) as earlier_min_target_sum_mm
    from burden

),

final as (

    select
        running_minimum.*,
        baselines.baseline_burden_mm,
        baselines.baseline_target_sum_mm,
        coalesce(baselines.baseline_complete, false) as baseline_complete,
        case
            when running_minimum.is_post_dose then
                case
                    when baselines.baseline_burden_mm is null then earlier_min_burden_mm
                    when earlier_min_burden_mm is null then baselines.baseline_burden_mm
                    when earlier_min_burden_mm < baselines.baseline_burden_mm then earlier_min_burden_mm
                    else baselines.baseline_burden_mm
                end
        end as nadir_mm,
        case
            when running_minimum.is_post_dose then
                case
                    when baselines.baseline_target_sum_mm is null then earlier_min_target_sum_mm
                    when earlier_min_target_sum_mm is null then baselines.baseline_target_sum_mm
                    when earlier_min_target_sum_mm < baselines.baseline_target_sum_mm
                        then earlier_min_target_sum_mm
                    else baselines.baseline_target_sum_mm
                end
        end as recist_nadir_mm
    from running_minimum
    left join baselines on running_minimum.usubjid = baselines.usubjid

)

select * from final

-- Every verdict of hpd_classification follows SPEC §3 from the published
-- kinetics of tumor_kinetics: judged exactly when the definition's needs are
-- met (rule 10), and, once judged, HPD exactly when its rule holds, with the
-- thresholds in force and the tolerance of rule 9 (the project's threshold
-- macros); an undefined term makes its condition false, and ongoing treatment
-- makes "TTF < 2 months" false. Lo Russo's verdict needs ECOG and new-lesion
-- organs: only its judged/not-judged need is checked here. Fails with each
-- disagreeing subject and definition.

with

classification as (

    select * from {{ ref('hpd_classification') }}

),

kinetics as (

    select
        *,
        evaluability = 'evaluable' as is_evaluable,
        tgr_pre is not null and tgr_post is not null as is_tgr_defined,
        coalesce(response_first_evaluation_recist = 'PD', false) as is_recist_pd
    from {{ ref('tumor_kinetics') }}

),

expected as (

    select
        classification.usubjid,
        classification.definition_id,
        classification.is_hpd,
        classification.not_judged_reason,
        case classification.definition_id
            when 'tgkr' then kinetics.is_evaluable
            when 'kato_2017' then kinetics.is_evaluable
            when 'lo_russo_2019' then kinetics.first_evaluation_date is not null
            else kinetics.is_evaluable and kinetics.is_tgr_defined
        end as expected_judged,
        case classification.definition_id
            when 'tgkr' then coalesce(
                kinetics.tgk_pre > 0 and {{ at_least('kinetics.tgkr', var('tgkr_min_ratio')) }},
                false
            )
            when 'champiat_2017' then kinetics.is_recist_pd and coalesce(
                kinetics.tgr_pre > 0
                and {{ at_least('kinetics.tgr_ratio', var('champiat_2017_min_tgr_ratio')) }},
                false
            )
            when 'ferrara_2018' then kinetics.is_recist_pd and coalesce(
                {{ greater_than('kinetics.delta_tgr', var('ferrara_2018_min_delta_tgr')) }},
                false
            )
            when 'kas_2020' then kinetics.is_recist_pd and coalesce(
                {{ greater_than('kinetics.delta_tgr', var('kas_2020_min_delta_tgr')) }},
                false
            )
            when 'kato_2017' then
                coalesce({{ less_than('kinetics.ttf_months', var('kato_2017_max_ttf_months')) }}, false)
                and coalesce(
                    {{ at_least(safe_ratio('kinetics.s_first_evaluation_mm', 'kinetics.s_pre_mm'), var('kato_2017_min_burden_ratio')) }},
                    false
                )
                and coalesce(
                    kinetics.pp_pre > 0
                    and {{ greater_than(safe_ratio('kinetics.pp_post', 'kinetics.pp_pre'), var('kato_2017_min_pp_ratio')) }},
                    false
                )
            when 'kim_2019' then coalesce(
                kinetics.tgk_pre > 0 and {{ at_least('kinetics.tgkr', var('kim_2019_min_tgkr')) }}
                and kinetics.tgr_pre > 0 and {{ at_least('kinetics.tgr_ratio', var('kim_2019_min_tgr_ratio')) }},
                false
            )
        end as expected_hpd
    from classification
    inner join kinetics on classification.usubjid = kinetics.usubjid

)

select *
from expected
where (is_hpd is not null) <> expected_judged
    or (is_hpd is not null and definition_id <> 'lo_russo_2019' and is_hpd <> expected_hpd)

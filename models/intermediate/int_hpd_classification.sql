-- Every published hyperprogression definition (SPEC §3), one row per treated
-- subject and definition: true, false, or null with the need that is unmet
-- (rule 10). Once a subject is judged, an undefined term makes its condition
-- false; ongoing treatment makes "TTF < 2 months" false.

with

kinetics as (

    select * from {{ ref('int_subject_kinetics') }}

),

ecog as (

    select * from {{ ref('int_ecog') }}

),

new_lesion_organs as (

    select * from {{ ref('int_new_lesion_organs') }}

),

conditions as (

    select
        kinetics.studyid,
        kinetics.usubjid,
        kinetics.evaluability = 'evaluable' as is_evaluable,
        kinetics.tgr_pre is not null and kinetics.tgr_post is not null as is_tgr_defined,
        kinetics.first_evaluation_date is not null as has_first_evaluation,
        kinetics.tgk_pre_non_positive,
        coalesce(kinetics.response_first_evaluation_recist = 'PD', false) as is_recist_pd,
        coalesce(
            kinetics.tgk_pre > 0 and {{ at_least('kinetics.tgkr', var('tgkr_min_ratio')) }},
            false
        ) as tgkr_doubled,
        coalesce(
            kinetics.tgr_pre > 0
            and {{ at_least('kinetics.tgr_ratio', var('champiat_2017_min_tgr_ratio')) }},
            false
        ) as champiat_tgr_doubled,
        coalesce({{ greater_than('kinetics.delta_tgr', var('ferrara_2018_min_delta_tgr')) }}, false)
            as ferrara_delta_tgr_exceeded,
        coalesce({{ greater_than('kinetics.delta_tgr', var('kas_2020_min_delta_tgr')) }}, false)
            as kas_delta_tgr_exceeded,
        coalesce({{ less_than('kinetics.ttf_months', var('kato_2017_max_ttf_months')) }}, false)
            as kato_early_failure,
        coalesce(
            {{ at_least('kinetics.burden_ratio_post_to_pre', var('kato_2017_min_burden_ratio')) }},
            false
        ) as kato_burden_grew,
        coalesce(
            kinetics.pp_pre > 0
            and {{ greater_than(safe_ratio('kinetics.pp_post', 'kinetics.pp_pre'), var('kato_2017_min_pp_ratio')) }},
            false
        ) as kato_pace_doubled,
        coalesce({{ less_than('kinetics.ttf_months', var('lo_russo_2019_max_ttf_months')) }}, false)
            as lo_russo_early_failure,
        coalesce(
            {{ at_least(
                safe_ratio(
                    'kinetics.target_sum_first_evaluation_mm - kinetics.target_sum_baseline_mm',
                    'kinetics.target_sum_baseline_mm'
                ),
                var('lo_russo_2019_min_target_increase')
            ) }},
            false
        ) as lo_russo_target_grew,
        coalesce(new_lesion_organs.new_lesions_in_involved_organ, false)
            as lo_russo_new_lesions_in_involved_organ,
        coalesce(new_lesion_organs.new_lesion_in_new_organ, false) as lo_russo_new_organ,
        coalesce(
            {{ at_least('ecog.ecog_max_early_on_treatment', var('lo_russo_2019_min_ecog')) }},
            false
        ) as lo_russo_ecog_worsened,
        coalesce(
            kinetics.tgr_pre > 0
            and {{ at_least('kinetics.tgr_ratio', var('kim_2019_min_tgr_ratio')) }},
            false
        ) as kim_tgr_doubled,
        coalesce(
            kinetics.tgk_pre > 0 and {{ at_least('kinetics.tgkr', var('kim_2019_min_tgkr')) }},
            false
        ) as kim_tgkr_doubled
    from kinetics
    left join ecog on kinetics.usubjid = ecog.usubjid
    left join new_lesion_organs on kinetics.usubjid = new_lesion_organs.usubjid

),

lo_russo as (

    select
        *,
        case when lo_russo_early_failure then 1 else 0 end
        + case when lo_russo_target_grew then 1 else 0 end
        + case when lo_russo_new_lesions_in_involved_organ then 1 else 0 end
        + case when lo_russo_new_organ then 1 else 0 end
        + case when lo_russo_ecog_worsened then 1 else 0 end as lo_russo_criteria_met
    from conditions

),

{%- set definitions = [
    ("tgkr", "is_evaluable", "not_evaluable", "tgkr_doubled",
        "case when is_evaluable and tgk_pre_non_positive then 'tgk_pre_non_positive' end"),
    ("champiat_2017", "is_evaluable and is_tgr_defined", "case when not is_evaluable then 'not_evaluable' else 'tgr_undefined' end",
        "is_recist_pd and champiat_tgr_doubled", none),
    ("ferrara_2018", "is_evaluable and is_tgr_defined", "case when not is_evaluable then 'not_evaluable' else 'tgr_undefined' end",
        "is_recist_pd and ferrara_delta_tgr_exceeded", none),
    ("kas_2020", "is_evaluable and is_tgr_defined", "case when not is_evaluable then 'not_evaluable' else 'tgr_undefined' end",
        "is_recist_pd and kas_delta_tgr_exceeded", none),
    ("kato_2017", "is_evaluable", "not_evaluable",
        "kato_early_failure and kato_burden_grew and kato_pace_doubled", none),
    ("lo_russo_2019", "has_first_evaluation", "no_first_evaluation",
        "lo_russo_criteria_met >= " ~ var('lo_russo_2019_min_criteria'), none),
    ("kim_2019", "is_evaluable and is_tgr_defined", "case when not is_evaluable then 'not_evaluable' else 'tgr_undefined' end",
        "kim_tgkr_doubled and kim_tgr_doubled", none),
] %}

classified as (

    {% for definition_id, judged, reason, condition, flag in definitions %}
    select
        studyid,
        usubjid,
        '{{ definition_id }}' as definition_id,
        {{ loop.index }} as definition_order,
        case when {{ judged }} then {{ condition }} end as is_hpd,
        case
            when not ({{ judged }})
                then {{ reason if reason.startswith('case') else "'" ~ reason ~ "'" }}
        end as not_judged_reason,
        {{ flag if flag else 'cast(null as ' ~ dbt.type_string() ~ ')' }} as flag,
        {% if definition_id == 'lo_russo_2019' -%}
        case when {{ judged }} then lo_russo_criteria_met end
        {%- else -%}
        cast(null as {{ dbt.type_int() }})
        {%- endif %} as criteria_met
    from lo_russo
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select * from classified

)

select * from final

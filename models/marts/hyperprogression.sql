-- One row per treated subject: a boolean column per definition, beside the
-- kinetics an analyst reads them with.

with

classification as (

    select * from {{ ref('int_hpd_classification') }}

),

kinetics as (

    select * from {{ ref('int_subject_kinetics') }}

),

pivoted as (

    select
        usubjid,
        {% for definition_id in hpd_definition_ids() -%}
        {{ pivot_boolean('is_hpd', 'definition_id', definition_id) }} as hpd_{{ definition_id }}
        {%- if not loop.last %},{% endif %}
        {% endfor %}
    from classification
    group by usubjid

),

final as (

    select
        kinetics.studyid,
        kinetics.usubjid,
        kinetics.evaluability,
        {% for definition_id in hpd_definition_ids() -%}
        pivoted.hpd_{{ definition_id }},
        {% endfor -%}
        kinetics.tgk_pre,
        kinetics.tgk_post,
        kinetics.tgkr,
        kinetics.tgk_pre_non_positive,
        kinetics.tgr_pre,
        kinetics.tgr_post,
        kinetics.tgr_ratio,
        kinetics.delta_tgr,
        kinetics.pp_pre,
        kinetics.pp_post,
        kinetics.ttf_months,
        kinetics.response_first_evaluation_irrecist,
        kinetics.response_first_evaluation_recist,
        kinetics.pct_change_first_evaluation,
        kinetics.pseudoprogression
    from kinetics
    left join pivoted on kinetics.usubjid = pivoted.usubjid

)

select * from final

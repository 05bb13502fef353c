-- The definitions catalogue with the thresholds in force for this refresh:
-- the seed holds the published defaults; the values here come from the
-- settings (dbt vars) the warehouse was built with.

with

catalogue as (

    select * from {{ ref('hpd_definition_catalogue') }}

),

thresholds as (

    select * from {{ ref('hpd_definition_thresholds') }}

),

{%- set settings = [
    'tgkr_min_ratio', 'champiat_2017_min_tgr_ratio', 'ferrara_2018_min_delta_tgr',
    'kas_2020_min_delta_tgr', 'kato_2017_max_ttf_months', 'kato_2017_min_burden_ratio',
    'kato_2017_min_pp_ratio', 'lo_russo_2019_min_criteria', 'lo_russo_2019_max_ttf_months',
    'lo_russo_2019_min_target_increase', 'lo_russo_2019_min_ecog',
    'lo_russo_2019_ecog_window_months', 'kim_2019_min_tgkr', 'kim_2019_min_tgr_ratio',
] %}

in_force as (

    {% for setting in settings %}
    select
        '{{ setting }}' as setting,
        cast({{ var(setting) }} as {{ type_double() }}) as value_in_force,
        '{{ var(setting) }}' as value_text
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

threshold_text as (

    select
        thresholds.definition_id,
        {{ dbt.listagg(
            dbt.concat(["thresholds.setting", "' = '", "in_force.value_text"]),
            "'; '",
            "order by thresholds.setting"
        ) }} as thresholds_in_force,
        sum(case when in_force.value_in_force <> thresholds.default_value then 1 else 0 end) > 0
            as thresholds_changed
    from thresholds
    left join in_force on thresholds.setting = in_force.setting
    group by thresholds.definition_id

),

final as (

    select
        catalogue.definition_id,
        catalogue.definition_order,
        catalogue.name,
        catalogue.authors,
        catalogue.journal,
        catalogue.year,
        catalogue.doi,
        catalogue.burden,
        catalogue.needs,
        {% set rule = namespace(sql='catalogue.rule') -%}
        {%- for setting in settings -%}
            {%- set rule.sql = "replace(" ~ rule.sql ~ ", '{" ~ setting ~ "}', '" ~ var(setting) ~ "')" -%}
        {%- endfor %}
        {{ rule.sql }} as rule,
        threshold_text.thresholds_in_force,
        coalesce(threshold_text.thresholds_changed, false) as thresholds_changed
    from catalogue
    left join threshold_text on catalogue.definition_id = threshold_text.definition_id

)

select * from final

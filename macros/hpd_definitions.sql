{#- The hyperprogression definitions of SPEC §3, in their published order;
    `tgkr` (the paper's) is the primary one. -#}
{% macro hpd_definition_ids() -%}
    {{ return(["tgkr", "champiat_2017", "ferrara_2018", "kas_2020", "kato_2017", "lo_russo_2019", "kim_2019"]) }}
{%- endmacro %}

{#- A boolean pivoted out of a long table: true/false, or null when the
    group has no non-null value (portable: PostgreSQL has no max(boolean)). -#}
{% macro pivot_boolean(value_column, key_column, key) -%}
    (max(
        case
            when {{ key_column }} = '{{ key }}' then
                case when {{ value_column }} then 1 when not {{ value_column }} then 0 end
        end
    ) = 1)
{%- endmacro %}

{#- Use a model's custom schema as written (`analytics`, not `main_analytics`),
    so the analyst contract's schema names are the same on every target. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}

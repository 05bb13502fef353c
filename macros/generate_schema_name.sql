{#- Use a model's custom schema as written (`analytics`, not `main_analytics`),
    so the analyst contract's schema names are the same on every target.

    Var `schema_suffix` (empty by default) builds every schema under another
    name: `hpd run --target postgres` builds into `analytics__building`,
    `staging__building`... and renames them into place in one transaction once
    the build and its checks pass, so analysts never see half-built marts.
    DuckDB builds into a new file instead and needs no suffix. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}{{ var('schema_suffix', '') }}
    {%- endif -%}
{%- endmacro %}

{#- The SDTM columns the warehouse reads (SPEC §1), lower case, per domain,
    as declared once in dbt_project.yml (var `sdtm_domains`). The loader
    creates `raw.<domain>` with exactly these columns (null when a file lacks
    an optional one) plus `_file_name` and `_row_number`. -#}
{% macro sdtm_columns(domain) -%}
    {%- set spec = var('sdtm_domains')[domain] -%}
    {{ return(spec['required'] + spec['optional']) }}
{%- endmacro %}

{#- One SDTM domain as text columns, blanks as null, with the file name and
    the row number (from 1 after the header) that rejected rows point back to.
    `var('input')` chooses the demo seeds or the loaded exports; both come out
    in the same shape, so staging is written once. -#}
{% macro sdtm_input(domain) -%}
    {%- if var('input') == 'demo' -%}
        {%- set relation = ref(domain) -%}
        {%- set file_name = "'" ~ domain ~ ".csv'" -%}
        {%- set row_number = seed_row_number(relation) -%}
    {%- elif var('input') == 'exports' -%}
        {%- set relation = source('sdtm', domain) -%}
        {%- set file_name = "_file_name" -%}
        {%- set row_number = "_row_number" -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error("var 'input' must be 'demo' or 'exports', not '" ~ var('input') ~ "'") }}
    {%- endif -%}
    (
        select
            {% for column in sdtm_columns(domain) -%}
            nullif(trim(cast({{ column }} as {{ dbt.type_string() }})), '') as {{ column }},
            {% endfor -%}
            {{ file_name }} as source_file,
            cast({{ row_number }} as {{ dbt.type_bigint() }}) as source_row
        from {{ relation }}
    )
{%- endmacro %}


{#- The position of a seed row in its file, from 1. A freshly loaded seed is
    stored in file order: DuckDB keeps insertion order, and so does
    PostgreSQL's heap for a table never updated, which ordering by `ctid`
    makes explicit rather than left to the plan (a unit test's fixture is a
    CTE, without ctid: its rows come in the order written). -#}
{% macro seed_row_number(relation) -%}
    {{ return(adapter.dispatch('seed_row_number', 'hpd')(relation)) }}
{%- endmacro %}

{% macro default__seed_row_number(relation) -%}
    row_number() over ()
{%- endmacro %}

{% macro postgres__seed_row_number(relation) -%}
    {%- if (relation | string).startswith('__dbt__cte__') -%}
        row_number() over ()
    {%- else -%}
        row_number() over (order by ctid)
    {%- endif -%}
{%- endmacro %}

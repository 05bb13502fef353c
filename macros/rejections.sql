{#- Row checks in the order they are made (SPEC rule 17): each row gets the
    reason and the column of the first check it fails, or nulls when it passes.
    `checks` is a list of (condition, reason, column): the column's SDTM name,
    `sql:<expression>` when the column depends on the row, or none when the
    reason concerns the whole row. -#}

{% macro first_failed_check(checks) -%}
    case
        {%- for condition, reason, column in checks %}
        when {{ condition }} then '{{ reason }}'
        {%- endfor %}
    end as rejection_reason,
    case
        {%- for condition, reason, column in checks %}
        when {{ condition }} then {{ _rejection_column_sql(column) }}
        {%- endfor %}
    end as rejection_column
{%- endmacro %}

{#- The usual checks: required values present, dates readable. -#}
{% macro missing_value_checks(columns) -%}
    {%- set checks = [] -%}
    {%- for column in columns -%}
        {%- do checks.append((column ~ " is null", "missing_value", column | upper)) -%}
    {%- endfor -%}
    {{ return(checks) }}
{%- endmacro %}

{% macro invalid_date_checks(columns) -%}
    {%- set checks = [] -%}
    {%- for column in columns -%}
        {%- do checks.append((sdtm_date_invalid(column), "invalid_date", column | upper)) -%}
    {%- endfor -%}
    {{ return(checks) }}
{%- endmacro %}

{% macro _rejection_column_sql(column) -%}
    {%- if column is none -%}
        cast(null as {{ dbt.type_string() }})
    {%- elif column.startswith('sql:') -%}
        {{ column[4:] }}
    {%- else -%}
        '{{ column }}'
    {%- endif -%}
{%- endmacro %}

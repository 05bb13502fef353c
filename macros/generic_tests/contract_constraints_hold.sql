{#-
    The rules of a mart's enforced contract (the `constraints:` of its YAML:
    not null, code lists, formulas), checked as one query: the rows that break
    any of them, with the first rule each breaks. DuckDB and PostgreSQL check
    these rules as they write the mart; Spark's Parquet tables do not, so the
    marts enable this test on Spark only.
-#}
{% test contract_constraints_hold(model) %}

{%- set rules = [] -%}
{#- The graph is empty while dbt parses the project. -#}
{%- set node = (graph.nodes.values()
    | selectattr('resource_type', 'equalto', 'model')
    | selectattr('name', 'equalto', model.identifier)
    | first) if execute else {'constraints': [], 'columns': {}} -%}
{%- for constraint in node.constraints if constraint.type == 'check' -%}
    {%- do rules.append((constraint.name or 'check ' ~ loop.index, constraint.expression)) -%}
{%- endfor -%}
{%- for column in node.columns.values() -%}
    {%- for constraint in column.constraints -%}
        {%- if constraint.type == 'not_null' -%}
            {%- do rules.append((column.name ~ ' not null', column.name ~ ' is not null')) -%}
        {%- elif constraint.type == 'check' -%}
            {%- do rules.append((column.name ~ ' check', constraint.expression)) -%}
        {%- endif -%}
    {%- endfor -%}
{%- endfor -%}

{#- A rule holds unless it is false (a null check passes, as in SQL). -#}
select *
from (
    select
        case
            when false then null
            {%- for name, expression in rules %}
            when not ({{ expression | trim }}) then '{{ name | replace("'", "''") }}'
            {%- endfor %}
        end as broken_rule,
        checked.*
    from {{ model }} as checked
) as rows_checked
where broken_rule is not null

{% endtest %}

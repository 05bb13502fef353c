{#- Portable helpers for what dbt's cross-database macros do not cover.
    Each dispatches, so a target whose SQL differs adds its own variant. -#}

{% macro regexp_like(expression, pattern) -%}
    {{ return(adapter.dispatch('regexp_like', 'hpd')(expression, pattern)) }}
{%- endmacro %}

{% macro default__regexp_like(expression, pattern) -%}
    ({{ expression }} ~ '{{ pattern }}')
{%- endmacro %}

{% macro duckdb__regexp_like(expression, pattern) -%}
    regexp_matches({{ expression }}, '{{ pattern }}')
{%- endmacro %}


{#- A number from text, null when the text is not a plain decimal number. -#}
{% macro try_cast_number(expression) -%}
    {{ return(adapter.dispatch('try_cast_number', 'hpd')(expression)) }}
{%- endmacro %}

{% macro default__try_cast_number(expression) -%}
    case
        when {{ regexp_like(expression, '^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$') }}
            then cast({{ expression }} as {{ type_double() }})
    end
{%- endmacro %}

{% macro duckdb__try_cast_number(expression) -%}
    case
        when {{ regexp_like(expression, '^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$') }}
            then try_cast({{ expression }} as double)
    end
{%- endmacro %}


{#- A calendar date from `YYYY-MM-DD` text, null when it is no real date
    (2017-02-30). -#}
{% macro try_cast_date(expression) -%}
    {{ return(adapter.dispatch('try_cast_date', 'hpd')(expression)) }}
{%- endmacro %}

{% macro default__try_cast_date(expression) -%}
    {{ dbt.safe_cast(expression, 'date') }}
{%- endmacro %}

{% macro duckdb__try_cast_date(expression) -%}
    try_cast({{ expression }} as date)
{%- endmacro %}


{#- Whole days from one date to another (calendar difference, SPEC rule 3). -#}
{% macro days_between(start_date, end_date) -%}
    {{ dbt.datediff(start_date, end_date, 'day') }}
{%- endmacro %}

{#- Months from one date to another: calendar days / 30.4375 (SPEC §2). -#}
{% macro months_between(start_date, end_date) -%}
    ({{ dbt.datediff(start_date, end_date, 'day') }} / {{ var('days_per_month') }})
{%- endmacro %}

{#- SDTM study day against the first dose: no day 0. -#}
{% macro study_day(event_date, first_dose_date) -%}
    case
        when {{ event_date }} >= {{ first_dose_date }}
            then {{ dbt.datediff(first_dose_date, event_date, 'day') }} + 1
        else {{ dbt.datediff(first_dose_date, event_date, 'day') }}
    end
{%- endmacro %}


{#- A 64-bit float. dbt.type_float() is a 4-byte FLOAT on DuckDB, which turns
    0.8 into 0.800000011920929; every measure here is double precision. -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'hpd')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double precision
{%- endmacro %}

{% macro duckdb__type_double() -%}
    double
{%- endmacro %}

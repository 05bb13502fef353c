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

{#- The same numbers as the pattern above, without a regular expression:
    DuckDB's cast accepts what the pattern does once the text holds only
    digits, signs, points and exponents (a glob, much cheaper than a
    regular expression or translate()) and no sign follows the first
    character's sign (`+-1`); tests/test_portable_parsing.py checks it. -#}
{% macro duckdb__try_cast_number(expression) -%}
    case
        when not ({{ expression }} glob '*[!0-9.eE+-]*')
            and substr({{ expression }}, 2, 1) not in ('+', '-')
            then try_cast({{ expression }} as double)
    end
{%- endmacro %}

{#- PostgreSQL has no try_cast, and its cast raises where DuckDB's gives
    infinity (1e400) or 0 (1e-400): the text is checked first, and a number
    beyond a double's range is mapped as DuckDB maps it (numeric holds it
    exactly, so the comparison is exact; an exponent of 4+ digits is decided
    from its sign alone, before numeric could overflow). Most values take the
    first branch: without an exponent and in at most 300 characters a number
    is within a double's range. -#}
{% macro postgres__try_cast_number(expression) -%}
    {%- set number = '^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$' -%}
    {%- set zero_mantissa = '^[+-]?0*[.]?0*([eE]|$)' -%}
    {%- set huge_exponent = '[eE][+]?0*[1-9][0-9]{3,}$' -%}
    {%- set tiny_exponent = '[eE]-0*[1-9][0-9]{3,}$' -%}
    case
        when {{ regexp_like(expression, number) }} then
            case
                when length({{ expression }}) <= 300 and strpos(upper({{ expression }}), 'E') = 0
                    then cast({{ expression }} as double precision)
                when {{ regexp_like(expression, zero_mantissa) }}
                    then cast({{ expression }} as double precision)
                when {{ regexp_like(expression, tiny_exponent) }}
                    then cast(0 as double precision)
                when {{ regexp_like(expression, huge_exponent) }}
                    then case when {{ expression }} like '-%' then cast('-Infinity' as double precision)
                        else cast('Infinity' as double precision) end
                when abs(cast({{ expression }} as numeric)) >= 1.79769313486231580793728971405303415079934132710037826936174e308
                    then sign(cast({{ expression }} as numeric)) * cast('Infinity' as double precision)
                when abs(cast({{ expression }} as numeric)) <= 2.47032822920623272088284396434110686182529901307162382212793e-324
                    then cast(0 as double precision)
                else cast({{ expression }} as double precision)
            end
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

{#- PostgreSQL has no try_cast and its cast raises on 2017-02-30: the text
    must be `YYYY-MM-DD` with a month of 01-12 and a day that month has
    (February 29 in leap years of the Gregorian calendar only). Year 0000 is
    1 BC, as DuckDB reads it. Other shapes are null, like the callers'
    patterns require. -#}
{% macro postgres__try_cast_date(expression) -%}
    {%- set year = "cast(substr(" ~ expression ~ ", 1, 4) as integer)" -%}
    {%- set month = "substr(" ~ expression ~ ", 6, 2)" -%}
    {%- set day = "cast(substr(" ~ expression ~ ", 9, 2) as integer)" -%}
    case
        when {{ regexp_like(expression, '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$') }} then
            case
                when {{ day }} <= case
                        when {{ month }} in ('04', '06', '09', '11') then 30
                        when {{ month }} <> '02' then 31
                        when mod({{ year }}, 4) = 0
                            and (mod({{ year }}, 100) <> 0 or mod({{ year }}, 400) = 0) then 29
                        else 28
                    end
                    then case
                        when substr({{ expression }}, 1, 4) = '0000'
                            then cast({{ dbt.concat(["'0001'", "substr(" ~ expression ~ ", 5, 6)", "' BC'"]) }} as date)
                        else cast({{ expression }} as date)
                    end
            end
    end
{%- endmacro %}


{#- Whole days from one date to another (calendar difference, SPEC rule 3),
    a bigint everywhere: DuckDB's date_diff is a bigint, PostgreSQL's
    `date - date` an integer. -#}
{% macro days_between(start_date, end_date) -%}
    cast({{ dbt.datediff(start_date, end_date, 'day') }} as {{ dbt.type_bigint() }})
{%- endmacro %}

{#- Months from one date to another: calendar days / 30.4375 (SPEC §2), a
    double on every target (on PostgreSQL an integer over a numeric literal
    would be a numeric). -#}
{% macro months_between(start_date, end_date) -%}
    (cast({{ dbt.datediff(start_date, end_date, 'day') }} as {{ type_double() }}) / {{ var('days_per_month') }})
{%- endmacro %}

{#- SDTM study day against the first dose: no day 0. A bigint. -#}
{% macro study_day(event_date, first_dose_date) -%}
    case
        when {{ event_date }} >= {{ first_dose_date }}
            then {{ days_between(first_dose_date, event_date) }} + 1
        else {{ days_between(first_dose_date, event_date) }}
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


{#- A double as text, written as DuckDB writes it (`3.0`, `2.5`, `1e+16`), so
    keys built from numbers (an assessment's `VISITNUM 3.0`) are the same on
    every target. PostgreSQL writes an integral double without `.0`, and
    infinity in words. -#}
{% macro number_text(expression) -%}
    {{ return(adapter.dispatch('number_text', 'hpd')(expression)) }}
{%- endmacro %}

{% macro default__number_text(expression) -%}
    cast({{ expression }} as {{ dbt.type_string() }})
{%- endmacro %}

{% macro postgres__number_text(expression) -%}
    case
        when {{ expression }} = cast('Infinity' as double precision) then 'inf'
        when {{ expression }} = cast('-Infinity' as double precision) then '-inf'
        when {{ expression }} = trunc({{ expression }}) and abs({{ expression }}) < 1e15
            then cast({{ expression }} as text) || '.0'
        else cast({{ expression }} as text)
    end
{%- endmacro %}

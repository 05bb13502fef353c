{#- ISO 8601 dates of SDTM (SPEC §1): `YYYY-MM-DD` with an optional time (dropped),
    or a partial `YYYY-MM` / `YYYY` imputed to the first day of the month / year.

    The default variants say it with regular expressions. DuckDB's variants say
    the same with globs: the same answer for every string (see
    tests/test_portable_parsing.py), at a tenth of the cost, which matters
    when every TR row's date is read several times. -#}

{% macro sdtm_date(column) -%}
    {{ return(adapter.dispatch('sdtm_date', 'hpd')(column)) }}
{%- endmacro %}

{% macro default__sdtm_date(column) -%}
    case
        when {{ regexp_like(column, '^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ].*)?$') }}
            then {{ try_cast_date("substr(" ~ column ~ ", 1, 10)") }}
        when {{ regexp_like(column, '^[0-9]{4}-[0-9]{2}$') }}
            then {{ try_cast_date(dbt.concat([column, "'-01'"])) }}
        when {{ regexp_like(column, '^[0-9]{4}$') }}
            then {{ try_cast_date(dbt.concat([column, "'-01-01'"])) }}
    end
{%- endmacro %}

{% macro duckdb__sdtm_date(column) -%}
    case
        when substr({{ column }}, 1, 10) glob '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'
            and (length({{ column }}) = 10
                or (substr({{ column }}, 11, 1) in ('T', ' ') and strpos({{ column }}, chr(10)) = 0))
            then try_cast(substr({{ column }}, 1, 10) as date)
        when {{ duckdb__is_year_month(column) }}
            then try_cast({{ column }} || '-01' as date)
        when {{ duckdb__is_year(column) }}
            then try_cast({{ column }} || '-01-01' as date)
    end
{%- endmacro %}

{#- `YYYY-MM` and `YYYY`, digits only. -#}
{% macro duckdb__is_year_month(column) -%}
    ({{ column }} glob '[0-9][0-9][0-9][0-9]-[0-9][0-9]')
{%- endmacro %}

{% macro duckdb__is_year(column) -%}
    ({{ column }} glob '[0-9][0-9][0-9][0-9]')
{%- endmacro %}

{#- True when the date was partial and has been imputed. -#}
{% macro sdtm_date_imputed(column) -%}
    {{ return(adapter.dispatch('sdtm_date_imputed', 'hpd')(column)) }}
{%- endmacro %}

{% macro default__sdtm_date_imputed(column) -%}
    ({{ column }} is not null
        and ({{ regexp_like(column, '^[0-9]{4}-[0-9]{2}$') }} or {{ regexp_like(column, '^[0-9]{4}$') }}))
{%- endmacro %}

{% macro duckdb__sdtm_date_imputed(column) -%}
    ({{ column }} is not null
        and ({{ duckdb__is_year_month(column) }} or {{ duckdb__is_year(column) }}))
{%- endmacro %}

{#- True when a date is given but cannot be read: the row is rejected. -#}
{% macro sdtm_date_invalid(column) -%}
    ({{ column }} is not null and {{ sdtm_date(column) }} is null)
{%- endmacro %}

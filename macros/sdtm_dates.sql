{#- ISO 8601 dates of SDTM (SPEC §1): `YYYY-MM-DD` with an optional time (dropped),
    or a partial `YYYY-MM` / `YYYY` imputed to the first day of the month / year. -#}

{% macro sdtm_date(column) -%}
    case
        when {{ regexp_like(column, '^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ].*)?$') }}
            then {{ try_cast_date("substr(" ~ column ~ ", 1, 10)") }}
        when {{ regexp_like(column, '^[0-9]{4}-[0-9]{2}$') }}
            then {{ try_cast_date(dbt.concat([column, "'-01'"])) }}
        when {{ regexp_like(column, '^[0-9]{4}$') }}
            then {{ try_cast_date(dbt.concat([column, "'-01-01'"])) }}
    end
{%- endmacro %}

{#- True when the date was partial and has been imputed. -#}
{% macro sdtm_date_imputed(column) -%}
    ({{ column }} is not null
        and ({{ regexp_like(column, '^[0-9]{4}-[0-9]{2}$') }} or {{ regexp_like(column, '^[0-9]{4}$') }}))
{%- endmacro %}

{#- True when a date is given but cannot be read: the row is rejected. -#}
{% macro sdtm_date_invalid(column) -%}
    ({{ column }} is not null and {{ sdtm_date(column) }} is null)
{%- endmacro %}

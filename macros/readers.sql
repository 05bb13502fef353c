{#- Who read a scan (SPEC §1, rule 5). The investigator's rows carry TREVAL
    `INVESTIGATOR` or a blank one; an independent reader is named by TREVALID. -#}

{% macro is_investigator(eval_column) -%}
    ({{ eval_column }} is null or upper({{ eval_column }}) = 'INVESTIGATOR')
{%- endmacro %}

{% macro reader_id(eval_column, evalid_column) -%}
    case
        when {{ is_investigator(eval_column) }} then 'INVESTIGATOR'
        else {{ dbt.concat(["upper(" ~ eval_column ~ ")", "': '", "coalesce(" ~ evalid_column ~ ", '')"]) }}
    end
{%- endmacro %}

{#- The key of an assessment within a subject's reads: VISITNUM, else VISIT,
    else the date (SPEC §1). -#}
{% macro assessment_key(visitnum_column, visit_column, date_text_column) -%}
    case
        when {{ visitnum_column }} is not null then {{ dbt.concat(["'VISITNUM '", number_text(visitnum_column)]) }}
        when {{ visit_column }} is not null then {{ dbt.concat(["'VISIT '", "upper(" ~ visit_column ~ ")"]) }}
        when {{ date_text_column }} is not null then {{ dbt.concat(["'DATE '", "substr(" ~ date_text_column ~ ", 1, 10)"]) }}
    end
{%- endmacro %}

{#- Threshold comparisons with the relative tolerance of SPEC rule 9: a value
    within `threshold_tolerance` (relative) of the threshold counts as equal, so
    a TGKR of 1.9999999999999998 is >= 2 and a delta TGR of 50.00000000001 is
    not > 50. Null in, null out. -#}

{% macro _tolerance(threshold) -%}
    ({{ var('threshold_tolerance') }} * abs({{ threshold }}))
{%- endmacro %}

{% macro at_least(value, threshold) -%}
    (({{ value }}) >= ({{ threshold }}) - {{ _tolerance(threshold) }})
{%- endmacro %}

{% macro greater_than(value, threshold) -%}
    (({{ value }}) > ({{ threshold }}) + {{ _tolerance(threshold) }})
{%- endmacro %}

{% macro at_most(value, threshold) -%}
    (({{ value }}) <= ({{ threshold }}) + {{ _tolerance(threshold) }})
{%- endmacro %}

{% macro less_than(value, threshold) -%}
    (({{ value }}) < ({{ threshold }}) - {{ _tolerance(threshold) }})
{%- endmacro %}

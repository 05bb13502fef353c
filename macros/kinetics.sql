{#- Tumor growth kinetics (SPEC §2): burden change per month. -#}
{% macro tgk(burden_from, burden_to, months) -%}
    ((({{ burden_to }}) - ({{ burden_from }})) / ({{ months }}))
{%- endmacro %}

{#- Ferté's tumor growth rate, %/month: 100 (exp(3 ln(S_b/S_a) / dt) - 1);
    undefined when either sum is 0. -#}
{% macro tgr(sum_from, sum_to, months) -%}
    case
        when ({{ sum_from }}) > 0 and ({{ sum_to }}) > 0 and ({{ months }}) > 0
            then 100 * (exp(3 * ln(({{ sum_to }}) / ({{ sum_from }})) / ({{ months }})) - 1)
    end
{%- endmacro %}

{#- A ratio, undefined (null) when the denominator is 0. -#}
{% macro safe_ratio(numerator, denominator) -%}
    case when ({{ denominator }}) <> 0 then ({{ numerator }}) / ({{ denominator }}) end
{%- endmacro %}

{#- A sum of diameters that does not depend on the order rows are added in:
    summed as exact decimals (mm to 1e-9), returned as a double, so
    equal lesions give equal sums and an unchanged burden a TGK of exactly 0. -#}
{% macro exact_sum(column) -%}
    cast(sum(cast({{ column }} as decimal(18, 9))) as {{ type_double() }})
{%- endmacro %}

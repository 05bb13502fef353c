-- How far the definitions agree (SPEC rule 18): for each pair, over the
-- subjects judged by both, how many each calls hyperprogressive, how many
-- both do, the Jaccard index of the two HPD sets and Cohen's kappa.

with

classification as (

    select * from {{ ref('int_hpd_classification') }}
    where is_hpd is not null

),

pairs as (

    select
        a.definition_id as definition_a,
        b.definition_id as definition_b,
        a.definition_order as order_a,
        b.definition_order as order_b,
        case when a.is_hpd then 1 else 0 end as hpd_a,
        case when b.is_hpd then 1 else 0 end as hpd_b
    from classification as a
    inner join classification as b
        on a.usubjid = b.usubjid
        and a.definition_order < b.definition_order

),

definitions as (

    select distinct definition_id, definition_order
    from {{ ref('int_hpd_classification') }}

),

all_pairs as (

    select
        a.definition_id as definition_a,
        b.definition_id as definition_b,
        a.definition_order as order_a,
        b.definition_order as order_b
    from definitions as a
    inner join definitions as b on a.definition_order < b.definition_order

),

counts as (

    select
        all_pairs.definition_a,
        all_pairs.definition_b,
        all_pairs.order_a,
        all_pairs.order_b,
        count(pairs.hpd_a) as judged_by_both,
        coalesce(sum(pairs.hpd_a), 0) as hpd_by_a,
        coalesce(sum(pairs.hpd_b), 0) as hpd_by_b,
        coalesce(sum(pairs.hpd_a * pairs.hpd_b), 0) as hpd_by_both
    from all_pairs
    left join pairs
        on all_pairs.definition_a = pairs.definition_a
        and all_pairs.definition_b = pairs.definition_b
    group by all_pairs.definition_a, all_pairs.definition_b, all_pairs.order_a, all_pairs.order_b

),

agreement as (

    select
        *,
        cast(judged_by_both - hpd_by_a - hpd_by_b + hpd_by_both as {{ type_double() }})
            as hpd_by_neither,
        case
            when judged_by_both > 0
                then (
                    cast(hpd_by_a as {{ type_double() }}) * hpd_by_b
                    + cast(judged_by_both - hpd_by_a as {{ type_double() }})
                    * (judged_by_both - hpd_by_b)
                ) / (cast(judged_by_both as {{ type_double() }}) * judged_by_both)
        end as expected_agreement
    from counts

),

final as (

    select
        definition_a,
        definition_b,
        cast(judged_by_both as {{ dbt.type_bigint() }}) as judged_by_both,
        cast(hpd_by_a as {{ dbt.type_bigint() }}) as hpd_by_a,
        cast(hpd_by_b as {{ dbt.type_bigint() }}) as hpd_by_b,
        cast(hpd_by_both as {{ dbt.type_bigint() }}) as hpd_by_both,
        {{ safe_ratio(
            'cast(hpd_by_both as ' ~ type_double() ~ ')',
            'hpd_by_a + hpd_by_b - hpd_by_both'
        ) }} as jaccard_index,
        case
            when judged_by_both > 0 and expected_agreement < 1
                then (
                    (hpd_by_both + hpd_by_neither) / judged_by_both - expected_agreement
                ) / (1 - expected_agreement)
        end as cohens_kappa,
        order_a,
        order_b
    from agreement

)

select * from final

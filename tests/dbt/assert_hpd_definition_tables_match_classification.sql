-- The per-definition summary and the pairwise agreement count the verdicts
-- of hpd_classification: every treated subject once per definition, the
-- subjects judged and called HPD; per pair, the subjects judged by both
-- (SPEC rule 18) and the HPD calls among them. Fails with each definition or
-- pair whose counts disagree.

with

classification as (

    select * from {{ ref('hpd_classification') }}

),

summary_expected as (

    select
        definition_id,
        count(*) as subjects,
        sum(case when is_hpd is not null then 1 else 0 end) as judged,
        sum(case when is_hpd then 1 else 0 end) as hpd
    from classification
    group by definition_id

),

summary_problems as (

    select
        coalesce(summary.definition_id, summary_expected.definition_id) as definition_a,
        cast(null as {{ dbt.type_string() }}) as definition_b,
        'summary' as check_name
    from {{ ref('hpd_definition_summary') }} as summary
    full outer join summary_expected on summary.definition_id = summary_expected.definition_id
    where summary.definition_id is null
        or summary_expected.definition_id is null
        or summary.subjects <> summary_expected.subjects
        or summary.judged <> summary_expected.judged
        or summary.hpd <> summary_expected.hpd

),

pairs_expected as (

    select
        a.definition_id as definition_a,
        b.definition_id as definition_b,
        count(*) as judged_by_both,
        sum(case when a.is_hpd then 1 else 0 end) as hpd_by_a,
        sum(case when b.is_hpd then 1 else 0 end) as hpd_by_b,
        sum(case when a.is_hpd and b.is_hpd then 1 else 0 end) as hpd_by_both
    from classification as a
    inner join classification as b
        on a.usubjid = b.usubjid
        and a.definition_order < b.definition_order
    where a.is_hpd is not null and b.is_hpd is not null
    group by a.definition_id, b.definition_id

),

agreement_problems as (

    select
        agreement.definition_a,
        agreement.definition_b,
        'agreement' as check_name
    from {{ ref('hpd_definition_agreement') }} as agreement
    left join pairs_expected
        on agreement.definition_a = pairs_expected.definition_a
        and agreement.definition_b = pairs_expected.definition_b
    where agreement.judged_by_both <> coalesce(pairs_expected.judged_by_both, 0)
        or agreement.hpd_by_a <> coalesce(pairs_expected.hpd_by_a, 0)
        or agreement.hpd_by_b <> coalesce(pairs_expected.hpd_by_b, 0)
        or agreement.hpd_by_both <> coalesce(pairs_expected.hpd_by_both, 0)

)

select * from summary_problems
union all
select * from agreement_problems

-- ECOG performance status per treated subject (SPEC rule 13): at baseline,
-- the latest QS ECOG101 value on or before the first dose (the highest on a
-- tie), else SC ECOG; and the worst value after the first dose within
-- `lo_russo_2019_ecog_window_months` of it (Lo Russo's criterion).

with

subjects as (

    select * from {{ ref('int_subjects') }}

),

qs as (

    select * from {{ ref('stg_qs') }}
    where rejection_reason is null and qstestcd = 'ECOG101' and result_value is not null

),

sc as (

    select * from {{ ref('stg_sc') }}
    where rejection_reason is null and sctestcd = 'ECOG'

),

pre_dose_qs as (

    select
        qs.usubjid,
        qs.result_value,
        row_number() over (
            partition by qs.usubjid
            order by qs.assessment_date desc, qs.result_value desc
        ) as recency_rank
    from qs
    inner join subjects on qs.usubjid = subjects.usubjid
    where qs.assessment_date <= subjects.first_dose_date

),

sc_ecog as (

    select
        usubjid,
        max({{ try_cast_number('scorres') }}) as sc_ecog
    from sc
    group by usubjid

),

post_dose_qs as (

    select
        qs.usubjid,
        max(qs.result_value) as ecog_max_early_on_treatment
    from qs
    inner join subjects on qs.usubjid = subjects.usubjid
    where qs.assessment_date > subjects.first_dose_date
        and {{ at_most(
            months_between('subjects.first_dose_date', 'qs.assessment_date'),
            var('lo_russo_2019_ecog_window_months')
        ) }}
    group by qs.usubjid

),

final as (

    select
        subjects.usubjid,
        coalesce(pre_dose_qs.result_value, sc_ecog.sc_ecog) as ecog_baseline,
        case
            when pre_dose_qs.result_value is not null then 'QS'
            when sc_ecog.sc_ecog is not null then 'SC'
        end as ecog_baseline_source,
        post_dose_qs.ecog_max_early_on_treatment
    from subjects
    left join pre_dose_qs
        on subjects.usubjid = pre_dose_qs.usubjid
        and pre_dose_qs.recency_rank = 1
    left join sc_ecog on subjects.usubjid = sc_ecog.usubjid
    left join post_dose_qs on subjects.usubjid = post_dose_qs.usubjid

)

select * from final

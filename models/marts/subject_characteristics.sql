-- One row per subject of DM: demographics, baseline ECOG, the SC
-- characteristics pivoted, and the regimen.

with

subjects as (

    select * from {{ ref('int_subjects') }}

),

ecog as (

    select * from {{ ref('int_ecog') }}

),

regimens as (

    select * from {{ ref('int_regimens') }}

),

sc as (

    select * from {{ ref('stg_sc') }}
    where rejection_reason is null

),

characteristics as (

    select
        usubjid,
        max(case when sctestcd = 'PRIMSITE' then scorres end) as primsite,
        max(case when sctestcd = 'HISTOL' then scorres end) as histol,
        max(case when sctestcd = 'METSITES' then scorres end) as metsites_text,
        max(case when sctestcd = 'MMR' then scorres end) as mmr,
        max(case when sctestcd = 'PDL1CPS' then scorres end) as pdl1cps_text
    from sc
    group by usubjid

),

final as (

    select
        subjects.studyid,
        subjects.usubjid,
        subjects.sex,
        subjects.age,
        ecog.ecog_baseline,
        ecog.ecog_baseline_source,
        characteristics.primsite,
        characteristics.histol,
        {{ try_cast_number('characteristics.metsites_text') }} as metsites,
        characteristics.mmr,
        {{ try_cast_number('characteristics.pdl1cps_text') }} as pdl1cps,
        {{ try_cast_number('characteristics.pdl1cps_text') }} >= 1 as pdl1_positive,
        regimens.regimen,
        subjects.arm,
        subjects.is_treated,
        subjects.first_dose_date
    from subjects
    left join ecog on subjects.usubjid = ecog.usubjid
    left join characteristics on subjects.usubjid = characteristics.usubjid
    left join regimens on subjects.usubjid = regimens.usubjid

)

select * from final

{{ config(alias='subject_characteristics') }}

-- Characteristics with ages over 89 grouped (HIPAA safe harbor) and without
-- free text (ARM) or dates.

with

characteristics as (

    select * from {{ ref('subject_characteristics') }}

),

final as (

    select
        studyid,
        usubjid,
        sex,
        case when age <= 89 then age end as age,
        coalesce(age > 89, false) as age_90_or_older,
        ecog_baseline,
        primsite,
        histol,
        metsites,
        mmr,
        pdl1cps,
        pdl1_positive,
        regimen,
        is_treated
    from characteristics

)

select * from final

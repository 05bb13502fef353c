-- Each treated subject's regimen: its distinct drug classes joined in the
-- order PD-1, PD-L1, CTLA-4, OTHER (SPEC §2), e.g. `PD-L1 + CTLA-4`.

with

ex as (

    select * from {{ ref('stg_ex') }}
    where rejection_reason is null

),

drug_classes as (

    select * from {{ ref('drug_classes') }}

),

class_order as (

    select * from {{ ref('drug_class_order') }}

),

subject_classes as (

    select distinct
        ex.usubjid,
        coalesce(drug_classes.drug_class, 'OTHER') as drug_class
    from ex
    left join drug_classes on ex.treatment_key = drug_classes.treatment

),

ordered as (

    select
        subject_classes.usubjid,
        subject_classes.drug_class,
        class_order.class_order
    from subject_classes
    inner join class_order on subject_classes.drug_class = class_order.drug_class

),

final as (

    select
        usubjid,
        {{ dbt.listagg('drug_class', "' + '", 'order by class_order') }} as regimen
    from ordered
    group by usubjid

)

select * from final

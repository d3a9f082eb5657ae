-- silver_customers: one row per customer_id (grain), the latest version.
-- Duplicates keep the latest updated_at, then the last occurrence by source
-- file name and line (SPEC §1.2). Customers are a dimension: no as-of filter.
with ranked as (
    select
        *,
        row_number() over (
            partition by customer_id
            order by updated_at desc nulls last, _source_file desc, _source_line desc
        ) as version_rank
    from bronze_customers
),

final as (
    select
        customer_id,
        first_name,
        last_name,
        lower(email) as email,
        gender,
        birth_date,
        city,
        country,
        registration_date,
        updated_at
    from ranked
    where version_rank = 1
)

select * from final

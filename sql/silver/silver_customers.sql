-- silver_customers: one row per customer_id (grain), the latest version.
-- Duplicates keep the latest updated_at, then the last occurrence by source
-- file name and line (docs/models.md §1.2). Customers are a dimension: no as-of filter.
with final as (
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
    from {{ latest_rows('bronze_customers') }} as latest
)

select * from final

-- silver_products: one row per product_id (grain); duplicates keep the last
-- occurrence by source file name and line. Dimension: no as-of filter.
with ranked as (
    select
        *,
        row_number() over (
            partition by product_id
            order by _source_file desc, _source_line desc
        ) as version_rank
    from bronze_products
),

final as (
    select
        product_id,
        product_name,
        category_id,
        brand,
        price,
        cost,
        stock_quantity,
        created_at,
        is_active
    from ranked
    where version_rank = 1
)

select * from final

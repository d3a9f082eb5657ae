-- silver_products: one row per product_id (grain); duplicates keep the last
-- occurrence by source file name and line. Dimension: no as-of filter.
with final as (
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
    from {{ latest_rows('bronze_products') }} as latest
)

select * from final

-- silver_product_categories: one row per category_id (grain); duplicates keep
-- the last occurrence by source file name and line. Dimension: no as-of filter.
with final as (
    select
        category_id,
        category_name,
        parent_category_id
    from {{ latest_rows('bronze_product_categories') }} as latest
)

select * from final

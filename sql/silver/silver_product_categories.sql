-- silver_product_categories: one row per category_id (grain); duplicates keep
-- the last occurrence by source file name and line. Dimension: no as-of filter.
with ranked as (
    select
        *,
        row_number() over (
            partition by category_id
            order by _source_file desc, _source_line desc
        ) as version_rank
    from bronze_product_categories
),

final as (
    select
        category_id,
        category_name,
        parent_category_id
    from ranked
    where version_rank = 1
)

select * from final

-- silver_reviews: one row per review_id (grain) dated on or before the as-of
-- date; duplicates keep the last occurrence by source file name and line.
with ranked as (
    select
        *,
        row_number() over (
            partition by review_id
            order by _source_file desc, _source_line desc
        ) as version_rank
    from bronze_reviews
),

final as (
    select
        review_id,
        product_id,
        customer_id,
        rating,
        review_date,
        review_text
    from ranked
    where version_rank = 1
      and review_date <= as_of_date()
)

select * from final

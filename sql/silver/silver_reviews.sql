-- silver_reviews: one row per review_id (grain) dated on or before the as-of
-- date; duplicates keep the last occurrence by source file name and line.
with final as (
    select
        review_id,
        product_id,
        customer_id,
        rating,
        review_date,
        review_text
    from {{ latest_rows('bronze_reviews') }} as latest
    where review_date <= as_of_date()
)

select * from final

-- silver_product_sales_monthly: one row per month and product_id (grain) with
-- the lines of revenue orders in that month (items of unknown products
-- included: gold drops them when it joins silver_products). A month's sums
-- are kept so that gold_product_performance adds months, not every line of
-- the history, and a nightly run recomputes only the months that changed.
-- Decimal sums: exact in any grouping, so months add up to the line totals.
with revenue_lines as (
    select
        cast(date_trunc('month', order_day) as date) as month,
        product_id,
        quantity,
        line_revenue,
        line_profit
    from silver_order_items
    where is_revenue_order
),

final as (
    select
        month,
        product_id,
        sum(quantity) as units,
        sum(line_revenue) as revenue,
        sum(line_profit) as profit
    from revenue_lines
    group by month, product_id
)

select * from final

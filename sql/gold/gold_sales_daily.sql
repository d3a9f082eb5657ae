-- gold_sales_daily: one row per sale_date (grain) with at least one revenue
-- order (docs/models.md §3.3). items_sold is the sum of item quantities.
with revenue_orders as (
    select * from silver_order_totals where is_revenue_order
),

final as (
    select
        order_day as sale_date,
        cast(sum(order_revenue) as decimal(18, 2)) as daily_revenue,
        count(*) as daily_orders,
        count(distinct customer_id) as unique_customers,
        cast(sum(items) as bigint) as items_sold,
        cast(sum(order_revenue) / count(*) as decimal(18, 2)) as avg_order_value
    from revenue_orders
    group by order_day
)

select * from final

-- silver_order_totals: one row per order_id (grain) of silver_orders with its
-- summed lines, partitioned by its order's month (order_month). An order
-- without items has revenue 0 and 0 items (docs/models.md §3.3–3.4).
-- Shared by the sales, customer and operational gold tables.
with item_totals as (
    select
        order_id,
        sum(line_revenue) as revenue,
        sum(quantity) as items
    from silver_order_items
    group by order_id
),

final as (
    select
        o.order_id,
        o.customer_id,
        o.order_date,
        o.order_day,
        cast(date_trunc('month', o.order_day) as date) as order_month,
        o.status,
        o.is_revenue_order,
        o.delivered_at,
        cast(coalesce(t.revenue, 0) as decimal(18, 2)) as order_revenue,
        coalesce(t.items, 0) as items
    from silver_orders as o
    left join item_totals as t on t.order_id = o.order_id
)

select * from final

-- silver_order_items: one row per order_item_id (grain) whose order exists in
-- silver_orders (so also on or before the as-of date), partitioned by its
-- order's day and whether that order counts as revenue (so that product
-- sales need no join); items of a missing order are excluded everywhere
-- (docs/models.md §3). A missing product keeps the line
-- with cost 0. Line money is rounded to cents, half away from zero:
--   line_revenue = quantity × unit_price × (1 − discount)
--   line_profit  = quantity × (unit_price × (1 − discount) − cost)
with final as (
    select
        i.order_item_id,
        i.order_id,
        o.order_day,
        o.is_revenue_order,
        i.product_id,
        i.quantity,
        i.unit_price,
        coalesce(i.discount, 0) as discount,
        coalesce(p.cost, 0) as unit_cost,
        p.product_id is not null as product_known,
        cast(
            i.quantity * i.unit_price * (1 - coalesce(i.discount, 0))
            as decimal(18, 2)
        ) as line_revenue,
        cast(
            i.quantity * (i.unit_price * (1 - coalesce(i.discount, 0)) - coalesce(p.cost, 0))
            as decimal(18, 2)
        ) as line_profit
    from {{ latest_rows('bronze_order_items') }} as i
    inner join silver_orders as o on o.order_id = i.order_id
    left join silver_products as p on p.product_id = i.product_id
)

select * from final

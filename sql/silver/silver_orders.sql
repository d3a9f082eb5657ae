-- silver_orders: one row per order_id (grain), partitioned by order_day; the
-- engine publishes the days up to the as-of date (incremental, see the
-- sidecar). Status is normalised to lower case; a revenue order is shipped or
-- delivered (docs/models.md §3). Orders whose customer is missing are kept: sales and
-- operational tables count them, customer tables join them away.
with final as (
    select
        order_id,
        customer_id,
        order_date,
        utc_date(order_date) as order_day,
        lower(status) as status,
        lower(status) in ('shipped', 'delivered') as is_revenue_order,
        payment_method,
        shipping_cost,
        delivered_at
    from {{ latest_rows('bronze_orders') }} as latest
)

select * from final

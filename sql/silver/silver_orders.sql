-- silver_orders: one row per order_id (grain) placed on or before the as-of
-- date. Status is normalised to lower case; a revenue order is shipped or
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
    -- The filter keeps the cast: DataFusion estimates its selectivity from
    -- column statistics, which it cannot behind utc_date() (docs/performance.md).
    where cast(order_date as date) <= as_of_date()
)

select * from final

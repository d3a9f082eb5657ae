-- silver_orders: one row per order_id (grain) placed on or before the as-of
-- date. Status is normalised to lower case; a revenue order is shipped or
-- delivered (SPEC §3). Orders whose customer is missing are kept: sales and
-- operational tables count them, customer tables join them away.
with ranked as (
    select
        *,
        row_number() over (
            partition by order_id
            order by _source_file desc, _source_line desc
        ) as version_rank
    from bronze_orders
),

final as (
    select
        order_id,
        customer_id,
        order_date,
        cast(order_date as date) as order_day,
        lower(status) as status,
        lower(status) in ('shipped', 'delivered') as is_revenue_order,
        payment_method,
        shipping_cost,
        delivered_at
    from ranked
    where version_rank = 1
      and cast(order_date as date) <= as_of_date()
)

select * from final

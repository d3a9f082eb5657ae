-- silver_orders: one row per order_id (grain) placed on or before the as-of
-- date. Status is normalised to lower case; a revenue order is shipped or
-- delivered (SPEC §3). Orders whose customer is missing are kept: sales and
-- operational tables count them, customer tables join them away.
-- De-duplication without sorting every row: only the few keys that occur
-- more than once go through the window; the others pass a hash join whose
-- build side is the small set of duplicated keys (hence the right join).
with duplicated_keys as (
    select order_id as duplicated_key
    from bronze_orders
    group by order_id
    having count(*) > 1
),
flagged as (
    select
        b.*,
        d.duplicated_key is not null as is_duplicated
    from duplicated_keys as d
    right join bronze_orders as b on d.duplicated_key = b.order_id
),
ranked as (
    select *, cast(1 as bigint) as version_rank
    from flagged
    where not is_duplicated
    union all
    select
        *,
        cast(row_number() over (
            partition by order_id
            order by _source_file desc, _source_line desc
        ) as bigint) as version_rank
    from flagged
    where is_duplicated
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

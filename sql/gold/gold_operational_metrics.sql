-- gold_operational_metrics: one row per month of order_date (grain), every
-- order whatever its status or customer (docs/models.md §3.4). Rates are over
-- orders_total; avg_items_per_order counts an order without items as 0;
-- avg_delivery_days averages delivered orders that have delivered_at.
-- Averages are exact sums divided once (integers; seconds as decimals), so a
-- month gives the same bits whichever files and order its rows come in.
with orders as (
    select
        cast(date_trunc('month', order_day) as date) as month,
        status,
        items,
        case
            when status = 'delivered' and delivered_at is not null
                then cast(date_part('epoch', delivered_at) - date_part('epoch', order_date) as decimal(38, 6))
        end as delivery_seconds
    from silver_order_totals
),

monthly as (
    select
        month,
        count(*) as orders_total,
        sum(case when status = 'pending' then 1 else 0 end) as orders_pending,
        sum(case when status = 'processing' then 1 else 0 end) as orders_processing,
        sum(case when status = 'shipped' then 1 else 0 end) as orders_shipped,
        sum(case when status = 'delivered' then 1 else 0 end) as orders_delivered,
        sum(case when status = 'cancelled' then 1 else 0 end) as orders_cancelled,
        sum(case when status = 'returned' then 1 else 0 end) as orders_returned,
        cast(sum(items) as double) / count(*) as avg_items_per_order,
        cast(sum(delivery_seconds) as double) / 86400.0 / count(delivery_seconds) as avg_delivery_days
    from orders
    group by month
),

final as (
    select
        month,
        orders_total,
        cast(orders_pending as bigint) as orders_pending,
        cast(orders_processing as bigint) as orders_processing,
        cast(orders_shipped as bigint) as orders_shipped,
        cast(orders_delivered as bigint) as orders_delivered,
        cast(orders_cancelled as bigint) as orders_cancelled,
        cast(orders_returned as bigint) as orders_returned,
        cast(orders_cancelled as double) / orders_total as cancellation_rate,
        cast(orders_returned as double) / orders_total as return_rate,
        avg_items_per_order,
        cast(avg_delivery_days as double) as avg_delivery_days
    from monthly
)

select * from final

-- gold_product_engagement_daily: one row per (date, product_id) with events
-- (docs/models.md §3.7). Rates are NULL when there were no views.
-- unique_customers counts distinct non-NULL customers in two plain
-- aggregations (per customer, then per product) instead of
-- count(distinct customer_id), which keeps one hash set per group and costs
-- more time and memory with millions of groups (docs/performance.md).
with per_customer as (
    select
        event_date,
        product_id,
        customer_id,
        count(case when event_type = 'view' then 1 end) as views,
        count(case when event_type = 'click' then 1 end) as clicks,
        count(case when event_type = 'add_to_cart' then 1 end) as add_to_cart,
        count(case when event_type = 'purchase' then 1 end) as purchases
    from silver_events
    group by event_date, product_id, customer_id
),

daily as (
    select
        event_date as date,
        product_id,
        sum(views) as views,
        sum(clicks) as clicks,
        sum(add_to_cart) as add_to_cart,
        sum(purchases) as purchases,
        count(customer_id) as unique_customers
    from per_customer
    group by event_date, product_id
),

final as (
    select
        date,
        product_id,
        cast(views as bigint) as views,
        cast(clicks as bigint) as clicks,
        cast(add_to_cart as bigint) as add_to_cart,
        cast(purchases as bigint) as purchases,
        unique_customers,
        case when views = 0 then null else cast(clicks as double) / views end as ctr,
        case when views = 0 then null else cast(purchases as double) / views end as conversion_rate
    from daily
)

select * from final

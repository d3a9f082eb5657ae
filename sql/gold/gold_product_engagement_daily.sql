-- gold_product_engagement_daily: one row per (date, product_id) with events
-- (SPEC §3.7). Rates are NULL when there were no views.
with daily as (
    select
        event_date as date,
        product_id,
        sum(case when event_type = 'view' then 1 else 0 end) as views,
        sum(case when event_type = 'click' then 1 else 0 end) as clicks,
        sum(case when event_type = 'add_to_cart' then 1 else 0 end) as add_to_cart,
        sum(case when event_type = 'purchase' then 1 else 0 end) as purchases,
        count(distinct customer_id) as unique_customers
    from silver_events
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

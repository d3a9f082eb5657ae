-- gold_customer_engagement_daily: one row per (date, customer_id) with events;
-- anonymous events (no customer_id) are left out (docs/models.md §3.7).
-- products_viewed counts distinct products with a view that day.
with final as (
    select
        event_date as date,
        customer_id,
        count(*) as events,
        count(distinct case when event_type = 'view' then product_id end) as products_viewed,
        cast(sum(case when event_type = 'add_to_cart' then 1 else 0 end) as bigint) as add_to_cart,
        cast(sum(case when event_type = 'purchase' then 1 else 0 end) as bigint) as purchases
    from silver_events
    where customer_id is not null
    group by event_date, customer_id
)

select * from final

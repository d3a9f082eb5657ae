-- gold_marketing_daily: one row per day and channel (grain): spend, clicks
-- and cost per click (NULL without clicks).
with spend as (
    select * from silver_marketing_spend
),

final as (
    select
        day,
        channel,
        sum(amount) as spend,
        sum(clicks) as clicks,
        cast(sum(amount) as double) / nullif(sum(clicks), 0) as cost_per_click
    from spend
    group by day, channel
)

select * from final

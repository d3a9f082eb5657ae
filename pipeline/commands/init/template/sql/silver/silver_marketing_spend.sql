-- silver_marketing_spend: one row per spend_id (grain), its latest version by
-- updated_at (then file name and line), as the source declares.
with latest as (
    select * from {{ latest_rows('bronze_marketing_spend') }} as s
),

final as (
    select
        spend_id,
        day,
        lower(channel) as channel,
        amount,
        coalesce(clicks, 0) as clicks
    from latest
)

select * from final

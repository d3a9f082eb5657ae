-- silver_events: one row per event_id (grain) that occurred on or before the
-- as-of date (UTC). A re-sent event_id keeps its last occurrence by source
-- file name and line (SPEC §1.2); unknown event types never get past bronze.
with ranked as (
    select
        *,
        row_number() over (
            partition by event_id
            order by _source_file desc, _source_line desc
        ) as version_rank
    from bronze_events
),

final as (
    select
        event_id,
        customer_id,
        product_id,
        lower(event_type) as event_type,
        occurred_at,
        cast(occurred_at as date) as event_date,
        session_id
    from ranked
    where version_rank = 1
      and cast(occurred_at as date) <= as_of_date()
)

select * from final

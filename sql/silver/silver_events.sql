-- silver_events: one row per event_id (grain). A re-sent event_id keeps its
-- last occurrence by source file name and line (docs/models.md §1.2); unknown
-- event types never get past bronze. Incremental by event_date (the sidecar):
-- the engine publishes the dates up to the as-of date, so no as-of filter here.
with final as (
    select
        event_id,
        customer_id,
        product_id,
        lower(event_type) as event_type,
        occurred_at,
        utc_date(occurred_at) as event_date,
        session_id
    from {{ latest_rows('bronze_events') }} as latest
)

select * from final

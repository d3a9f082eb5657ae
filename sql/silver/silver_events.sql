-- silver_events: one row per event_id (grain) that occurred on or before the
-- as-of date (UTC). A re-sent event_id keeps its last occurrence by source
-- file name and line (docs/models.md §1.2); unknown event types never get past bronze.
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
    -- The filter keeps the cast: DataFusion estimates its selectivity from
    -- column statistics, which it cannot behind utc_date() (docs/performance.md).
    where cast(occurred_at as date) <= as_of_date()
)

select * from final

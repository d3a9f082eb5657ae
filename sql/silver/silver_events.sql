-- silver_events: one row per event_id (grain) that occurred on or before the
-- as-of date (UTC). A re-sent event_id keeps its last occurrence by source
-- file name and line (SPEC §1.2); unknown event types never get past bronze.
-- De-duplication without sorting every row: only the few keys that occur
-- more than once go through the window; the others pass a hash join whose
-- build side is the small set of duplicated keys (hence the right join).
with duplicated_keys as (
    select event_id as duplicated_key
    from bronze_events
    group by event_id
    having count(*) > 1
),
flagged as (
    select
        b.*,
        d.duplicated_key is not null as is_duplicated
    from duplicated_keys as d
    right join bronze_events as b on d.duplicated_key = b.event_id
),
ranked as (
    select *, cast(1 as bigint) as version_rank
    from flagged
    where not is_duplicated
    union all
    select
        *,
        cast(row_number() over (
            partition by event_id
            order by _source_file desc, _source_line desc
        ) as bigint) as version_rank
    from flagged
    where is_duplicated
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

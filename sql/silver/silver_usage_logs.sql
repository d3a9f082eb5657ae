-- silver_usage_logs: one row per usage_id (grain) on or before the as-of
-- date. metadata stays the JSON text it arrived as: a malformed value is no
-- reason to drop a row.
-- De-duplication without sorting every row: only the rows of keys that occur
-- more than once go through the window, which names the superseded copies
-- by (_source_file, _source_line), unique per bronze row; an anti join whose
-- build side is that small set drops them. Each CTE is referenced once:
-- DataFusion 55 re-computes a CTE at every reference, and the earlier form
-- (a flag joined to every row, then a union of two branches) ran the
-- duplicate search twice. The small side comes first in each join so that
-- it is the hash table.
-- Candidates are found by a 64-bit key_hash(usage_id) rather than the string
-- (grouping integers took 26 s instead of 34 s at scale 10, half the
-- memory). A hash collision only sends two distinct keys through the
-- window, which partitions by the exact usage_id and keeps both.
-- The repeated keys come from repeated_keys(), which sorts the keys in
-- 256 cache-sized buckets instead of grouping them in one hash table that
-- outgrows the CPU caches (silver_events at scale 10: 66 -> 33 s).
with duplicated_hashes as (
    select unnest(repeated_keys(key_hash(usage_id))) as duplicated_hash
    from bronze_usage_logs
),

superseded as (
    select _source_file, _source_line
    from (
        select
            b._source_file,
            b._source_line,
            row_number() over (
                partition by b.usage_id
                order by b._source_file desc, b._source_line desc
            ) as version_rank
        from duplicated_hashes as d
        inner join bronze_usage_logs as b on d.duplicated_hash = key_hash(b.usage_id)
    ) as versions
    where version_rank > 1
),

latest as (
    select b.*
    from superseded as s
    right anti join bronze_usage_logs as b
        on s._source_line = b._source_line and s._source_file = b._source_file
),

final as (
    select
        usage_id,
        user_id,
        feature_key,
        occurred_at,
        utc_date(occurred_at) as usage_date,
        metadata
    from latest
    -- utc_date() computes the day without a time-zone lookup per row; the
    -- filter keeps the cast, whose selectivity DataFusion estimates from
    -- column statistics: behind a function it cannot, and it then chose
    -- the wrong hash-join sides (silver_events: 3 x the memory).
    where cast(occurred_at as date) <= as_of_date()
)

select * from final

-- silver_onboarding_users: one row per onboarded user_id (grain) whose first
-- login is on or before the as-of date (the engine publishes the dates up to
-- it: the table is incremental by first_login_dt), with the segment from dim_users only
-- (NULL when unknown: gold excludes those users, a warn test counts them) and
-- the deterministic A/B assignment of docs/models.md §3.5:
--   bucket = murmur3_x86_32('<ab_salt>/<user_id>', seed 0) % 10000
-- and the arm owning that bucket (§3.9): with the default two arms, control
-- when bucket < control_share × 10000, else treatment; with `ab_arms` the
-- buckets are dealt to the arms in the written order, by their shares.
-- The bucket depends only on the salt and the user, so a user never changes
-- group when other users arrive.
with onboarded as (
    select
        *,
        murmur3_x86_32(concat(setting('ab_salt'), '/', cast(user_id as varchar))) % 10000 as ab_bucket
    from {{ latest_rows('bronze_lk_onboarding') }} as latest
    where first_login_dt is not null
),

final as (
    select
        o.user_id,
        o.first_login_dt,
        o."return" as returned,
        o.return_dt,
        o.activacion_dt,
        o.setup_dt,
        d.segment,
        d.segment_name,
        o.ab_bucket,
        {{ ab_group(o.ab_bucket) }} as ab_group
    from onboarded as o
    left join silver_dim_users as d on d.user_id = o.user_id
)

select * from final

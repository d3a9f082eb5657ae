-- gold_onboarding_funnel: one row per (segment_name, ab_group), plus totals
-- with segment_name 'All' and/or ab_group 'all' (docs/models.md §3.5). Rates are over
-- users (NULL when there are none); a user whose return is unknown is not
-- counted as dropped.
with users as (
    select * from gold_user_onboarding_metrics
),

grouped as (
    select
        coalesce(segment_name, 'All') as segment_name,
        coalesce(ab_group, 'all') as ab_group,
        count(*) as users,
        count(case when activation then 1 end) as activated,
        count(case when setup then 1 end) as setup_done,
        count(case when habit then 1 end) as habit_users,
        count(case when "drop" then 1 end) as dropped
    from users
    group by cube (segment_name, ab_group)
),

final as (
    select
        segment_name,
        ab_group,
        users,
        activated,
        setup_done,
        habit_users,
        dropped,
        cast(activated as double) / nullif(users, 0) as activation_rate,
        cast(setup_done as double) / nullif(users, 0) as setup_rate,
        cast(habit_users as double) / nullif(users, 0) as habit_rate,
        cast(dropped as double) / nullif(users, 0) as drop_rate
    from grouped
)

select * from final

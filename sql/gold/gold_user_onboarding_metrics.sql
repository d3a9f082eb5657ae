-- gold_user_onboarding_metrics: one row per onboarded user with a known
-- segment (docs/models.md §3.5). Habit window: first_login_dt ≤ date(transaction) ≤
-- first_login_dt + habit_window_days − 1. Individuals reach the habit on their
-- habit_threshold-th distinct transaction day; Sellers on their
-- habit_threshold-th charge (type 8 or 9). habit_dt is the day it was reached.
-- Charges are counted in day order: the n-th charge's day is the same in any
-- order of the charges of one day, so no finer order (time, file, line) is read.
with users as (
    select * from silver_onboarding_users where segment_name is not null
),

window_transactions as (
    select
        t.user_id,
        u.segment,
        t.transaction_day,
        t.type
    from silver_user_transactions as t
    inner join users as u on u.user_id = t.user_id
    where days_between(t.transaction_day, u.first_login_dt) between 0 and param('habit_window_days') - 1
),

individual_days as (
    select distinct user_id, transaction_day
    from window_transactions
    where segment = 1
),

individual_progress as (
    select
        user_id,
        transaction_day,
        row_number() over (partition by user_id order by transaction_day) as reached
    from individual_days
),

seller_progress as (
    select
        user_id,
        transaction_day,
        row_number() over (partition by user_id order by transaction_day) as reached
    from window_transactions
    where segment = 2 and type in (8, 9)
),

habits as (
    select user_id, transaction_day as habit_dt
    from individual_progress
    where reached = param('habit_threshold')
    union all
    select user_id, transaction_day as habit_dt
    from seller_progress
    where reached = param('habit_threshold')
),

final as (
    select
        u.user_id,
        u.segment,
        u.segment_name,
        u.first_login_dt,
        case u.returned when 0 then true when 1 then false end as "drop",
        u.activacion_dt is not null as activation,
        u.setup_dt is not null as setup,
        h.habit_dt is not null as habit,
        h.habit_dt,
        u.ab_group
    from users as u
    left join habits as h on h.user_id = u.user_id
)

select * from final

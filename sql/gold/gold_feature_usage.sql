-- gold_feature_usage: one row per (date, feature_key): uses and distinct users.
with final as (
    select
        usage_date as date,
        feature_key,
        count(*) as uses,
        count(distinct user_id) as unique_users
    from silver_usage_logs
    group by usage_date, feature_key
)

select * from final

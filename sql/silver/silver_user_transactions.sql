-- silver_user_transactions: the transactions on or before the as-of date (no
-- primary key in the source: every landed row is kept). transaction_segment
-- is the transaction's own segment column, kept for reconciliation only:
-- users are classified by dim_users (docs/models.md §3.5).
with final as (
    select
        user_id,
        transaction_dt,
        utc_date(transaction_dt) as transaction_day,
        type,
        segment as transaction_segment,
        _source_file,
        _source_line
    from bronze_bt_users_transactions
)

select * from final

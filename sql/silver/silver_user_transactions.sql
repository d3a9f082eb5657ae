-- silver_user_transactions: the transactions on or before the as-of date (no
-- primary key in the source: every landed row is kept). transaction_segment
-- is the transaction's own segment column, kept for reconciliation only:
-- users are classified by dim_users (SPEC §3.5).
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
    -- utc_date() computes the day without a time-zone lookup per row; the
    -- filter keeps the cast, as in every silver model: DataFusion estimates
    -- a cast's selectivity from column statistics but not a function's (in
    -- silver_events that chose the wrong hash-join sides: 3 x the memory).
    where cast(transaction_dt as date) <= as_of_date()
)

select * from final

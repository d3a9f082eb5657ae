-- Failing rows: transactions whose own segment column disagrees with the
-- user's known segment in dim_users (docs/models.md §3.5 classifies by dim_users only).
with final as (
    select
        t.user_id,
        t.transaction_dt,
        t.transaction_segment,
        d.segment as dim_users_segment,
        t._source_file,
        t._source_line
    from silver_user_transactions as t
    inner join silver_dim_users as d on d.user_id = t.user_id
    where t.transaction_segment is not null
      and d.segment is not null
      and t.transaction_segment <> d.segment
)

select * from final

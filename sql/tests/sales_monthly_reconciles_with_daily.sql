-- Failing rows: months whose revenue or order count differs from the sum of
-- their days in gold_sales_daily (or that exist in only one of the tables).
with daily as (
    select
        cast(date_trunc('month', sale_date) as date) as month,
        sum(daily_revenue) as revenue,
        sum(daily_orders) as orders
    from gold_sales_daily
    group by cast(date_trunc('month', sale_date) as date)
),

final as (
    select
        coalesce(m.month, d.month) as month,
        m.monthly_revenue,
        d.revenue as daily_revenue_sum,
        m.monthly_orders,
        d.orders as daily_orders_sum
    from gold_sales_monthly as m
    full outer join daily as d on d.month = m.month
    where (m.monthly_revenue is distinct from d.revenue)
       or (m.monthly_orders is distinct from d.orders)
)

select * from final

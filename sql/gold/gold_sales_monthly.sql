-- gold_sales_monthly: one row per month (grain, first day of the month) with
-- revenue orders (docs/models.md §3.3). Growth compares with the previous calendar
-- month; NULL when that month had no revenue (including the first month).
with revenue_orders as (
    select * from silver_order_totals where is_revenue_order
),

monthly as (
    select
        cast(date_trunc('month', order_day) as date) as month,
        sum(order_revenue) as revenue,
        count(*) as orders,
        count(distinct customer_id) as unique_customers
    from revenue_orders
    group by cast(date_trunc('month', order_day) as date)
),

final as (
    select
        m.month,
        cast(m.revenue as decimal(18, 2)) as monthly_revenue,
        m.orders as monthly_orders,
        m.unique_customers,
        cast(m.revenue / m.orders as decimal(18, 2)) as avg_order_value,
        case
            when p.revenue is null or p.revenue = 0 then null
            else 100.0 * (cast(m.revenue as double) - cast(p.revenue as double)) / cast(p.revenue as double)
        end as mom_revenue_growth_percent
    from monthly as m
    left join monthly as p
        on p.month = cast(m.month - interval '1 month' as date)
)

select * from final

-- gold_customer_analytics: one row per customer_id (grain) known to
-- silver_customers with at least one revenue order (docs/models.md §3.1): profile,
-- RFM scores and segment, lifetime value. Orders of unknown customers count
-- in sales tables but never here.
with revenue_orders as (
    select * from silver_order_totals where is_revenue_order
),

customer_orders as (
    select
        customer_id,
        count(*) as total_orders,
        sum(order_revenue) as total_revenue,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date
    from revenue_orders
    group by customer_id
),

profiled as (
    select
        c.customer_id,
        c.first_name,
        c.last_name,
        c.email,
        c.city,
        c.country,
        c.birth_date,
        o.total_orders,
        o.total_revenue,
        o.first_order_date,
        o.last_order_date,
        days_between(as_of_date(), c.registration_date) as tenure_days,
        days_between(as_of_date(), cast(o.last_order_date as date)) as recency_days,
        days_between(as_of_date(), cast(o.first_order_date as date)) as days_since_first_order,
        -- Whole years: one less when this year's birthday is still ahead.
        cast(date_part('year', as_of_date()) - date_part('year', c.birth_date) as bigint)
            - case
                when date_part('month', as_of_date()) * 100 + date_part('day', as_of_date())
                    < date_part('month', c.birth_date) * 100 + date_part('day', c.birth_date)
                    then 1
                else 0
            end as age
    from customer_orders as o
    inner join silver_customers as c on c.customer_id = o.customer_id
),

scored as (
    select
        *,
        ntile(5) over (order by recency_days desc, customer_id) as r_score,
        ntile(5) over (order by total_orders, customer_id) as f_score,
        ntile(5) over (order by total_revenue, customer_id) as m_score
    from profiled
),

final as (
    select
        customer_id,
        nullif(concat_ws(' ', initcap(first_name), initcap(last_name)), '') as full_name,
        email,
        city,
        country,
        case
            when age is null then 'Unknown'
            when age < 18 then 'Under 18'
            when age < 25 then '18-24'
            when age < 35 then '25-34'
            when age < 45 then '35-44'
            when age < 55 then '45-54'
            when age < 65 then '55-64'
            else '65+'
        end as age_group,
        case
            when tenure_days < 90 then 'New'
            when tenure_days < 365 then 'Recent'
            when tenure_days < 1095 then 'Regular'
            else 'Veteran'
        end as customer_lifetime_stage,
        total_orders,
        cast(total_revenue as decimal(18, 2)) as total_revenue,
        cast(total_revenue / total_orders as decimal(18, 2)) as avg_order_value,
        first_order_date,
        last_order_date,
        recency_days,
        cast(r_score as bigint) as r_score,
        cast(f_score as bigint) as f_score,
        cast(m_score as bigint) as m_score,
        concat(cast(r_score as varchar), cast(f_score as varchar), cast(m_score as varchar)) as rfm_score,
        case
            when days_since_first_order < param('new_customer_days') then 'New'
            when r_score >= 4 and f_score >= 4 and m_score >= 4 then 'VIP'
            when f_score >= 4 and r_score >= 3 then 'Loyal'
            when r_score <= 2 and f_score >= 3 then 'At Risk'
            when r_score = 1 then 'Lost'
            else 'Regular'
        end as customer_segment,
        -- avg_order_value × orders_per_year × lifespan; active years at least one month.
        -- Rounded to cents on its decimal value, so exact ties go up in magnitude.
        cast(round_half_away(
            cast(total_revenue as double) / total_orders
            * (total_orders / greatest((days_since_first_order + 1) / 365.0, 1.0 / 12))
            * param('clv_lifespan_years'),
            2
        ) as decimal(18, 2)) as customer_lifetime_value
    from scored
)

select * from final

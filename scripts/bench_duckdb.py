"""The medallion work in DuckDB, for the benchmark (scripts/bench.py).

Usage: bench_duckdb.py <input> <output> <as-of YYYY-MM-DD>

What a data engineer would write with dbt + DuckDB for the same contract:
CSV -> typed bronze Parquet (all columns as text, then `try_cast`; rows with
an unusable key dropped), silver (as-of filter, de-duplication by key keeping
the newest row), gold (docs/models.md §3.1-3.4, §3.5 user metrics, §3.7) written as
ZSTD Parquet. Every layer is materialised as Parquet and read back by the
next one, as medallion does.

Left out, so DuckDB does *less* work than medallion in the comparison: the
row-level quarantine files, data tests, the A/B statistics tables (DuckDB
has no murmur3 or normal CDF built in) and the Amplitude tables (tiny).
"""

import pathlib
import sys
import time

import duckdb

SOURCES = {
    "customers": "customer_id, first_name, last_name, email, gender, birth_date, city, country, registration_date, updated_at",
    "product_categories": "category_id, category_name, parent_category_id",
    "products": "product_id, product_name, category_id, brand, price, cost, stock_quantity, created_at, is_active",
    "orders": "order_id, customer_id, order_date, status, payment_method, shipping_cost, delivered_at",
    "order_items": "order_item_id, order_id, product_id, quantity, unit_price, discount",
    "reviews": "review_id, product_id, customer_id, rating, review_date, review_text",
    "events": "event_id, customer_id, product_id, event_type, occurred_at, session_id",
    "usage_logs": "usage_id, user_id, feature_key, occurred_at, metadata",
    "lk_onboarding": "user_id, first_login_dt, week_year, \"return\", return_dt, activacion_dt, setup_dt, habito, habito_dt",
    "dim_users": "user_id, segment, rubro",
    "bt_users_transactions": "user_id, transaction_dt, type, segment",
}

TS = "coalesce(try_strptime({c}, '%Y-%m-%d %H:%M:%S'), try_cast({c} as timestamptz)::timestamp)"
D = "try_cast({c} as date)"

BRONZE = {
    "customers": f"""select try_cast(customer_id as bigint) customer_id, first_name, last_name, email, gender,
        {D.format(c='birth_date')} birth_date, city, country, {D.format(c='registration_date')} registration_date,
        {TS.format(c='updated_at')} updated_at from src where try_cast(customer_id as bigint) is not null""",
    "product_categories": """select try_cast(category_id as bigint) category_id, category_name,
        try_cast(parent_category_id as bigint) parent_category_id from src where try_cast(category_id as bigint) is not null""",
    "products": f"""select try_cast(product_id as bigint) product_id, product_name, try_cast(category_id as bigint) category_id, brand,
        try_cast(price as decimal(18,2)) price, try_cast(cost as decimal(18,2)) cost, try_cast(stock_quantity as bigint) stock_quantity,
        {D.format(c='created_at')} created_at, try_cast(is_active as boolean) is_active
        from src where try_cast(product_id as bigint) is not null""",
    "orders": f"""select try_cast(order_id as bigint) order_id, try_cast(customer_id as bigint) customer_id,
        {TS.format(c='order_date')} order_date, lower(status) status, payment_method,
        try_cast(shipping_cost as decimal(18,2)) shipping_cost, {TS.format(c='delivered_at')} delivered_at
        from src where try_cast(order_id as bigint) is not null and {TS.format(c='order_date')} is not null""",
    "order_items": """select try_cast(order_item_id as bigint) order_item_id, try_cast(order_id as bigint) order_id,
        try_cast(product_id as bigint) product_id, try_cast(quantity as bigint) quantity,
        try_cast(unit_price as decimal(18,2)) unit_price, coalesce(try_cast(discount as decimal(18,4)), 0) discount
        from src where try_cast(order_item_id as bigint) is not null and try_cast(quantity as bigint) > 0""",
    "reviews": f"""select try_cast(review_id as bigint) review_id, try_cast(product_id as bigint) product_id,
        try_cast(customer_id as bigint) customer_id, try_cast(rating as bigint) rating, {D.format(c='review_date')} review_date, review_text
        from src where try_cast(review_id as bigint) is not null and try_cast(rating as bigint) between 1 and 5""",
    "events": f"""select event_id, try_cast(customer_id as bigint) customer_id, try_cast(product_id as bigint) product_id,
        event_type, {TS.format(c='occurred_at')} occurred_at, session_id
        from src where event_id <> '' and event_type in ('view', 'click', 'add_to_cart', 'purchase') and {TS.format(c='occurred_at')} is not null""",
    "usage_logs": f"""select usage_id, try_cast(user_id as bigint) user_id, feature_key, {TS.format(c='occurred_at')} occurred_at, metadata
        from src where usage_id <> '' and {TS.format(c='occurred_at')} is not null""",
    "lk_onboarding": f"""select try_cast(user_id as bigint) user_id, {D.format(c='first_login_dt')} first_login_dt, week_year,
        try_cast("return" as bigint) "return", {D.format(c='return_dt')} return_dt, {D.format(c='activacion_dt')} activacion_dt,
        {D.format(c='setup_dt')} setup_dt, try_cast(habito as bigint) habito, {D.format(c='habito_dt')} habito_dt
        from src where try_cast(user_id as bigint) is not null and {D.format(c='first_login_dt')} is not null""",
    "dim_users": """select try_cast(user_id as bigint) user_id, try_cast(segment as bigint) segment, rubro
        from src where try_cast(user_id as bigint) is not null""",
    "bt_users_transactions": f"""select try_cast(user_id as bigint) user_id, {TS.format(c='transaction_dt')} transaction_dt,
        try_cast(type as bigint) type, try_cast(segment as bigint) segment
        from src where try_cast(user_id as bigint) is not null and {TS.format(c='transaction_dt')} is not null""",
}

SILVER = {
    "silver_customers": "select * from bronze_customers qualify row_number() over (partition by customer_id order by updated_at desc nulls last) = 1",
    "silver_products": "select * from bronze_products qualify row_number() over (partition by product_id order by product_id) = 1",
    "silver_product_categories": "select * from bronze_product_categories qualify row_number() over (partition by category_id order by category_id) = 1",
    "silver_orders": "select * from bronze_orders where order_date::date <= $as_of qualify row_number() over (partition by order_id order by order_date desc) = 1",
    "silver_order_items": """select i.*, round(i.quantity * i.unit_price * (1 - i.discount), 2)::decimal(18,2) line_revenue,
        round(i.quantity * (i.unit_price * (1 - i.discount) - coalesce(p.cost, 0)), 2)::decimal(18,2) line_profit
        from (select * from bronze_order_items qualify row_number() over (partition by order_item_id order by order_item_id) = 1) i
        join silver_orders o using (order_id) left join silver_products p using (product_id)""",
    "silver_order_totals": """select o.order_id, o.customer_id, o.order_date, o.status, o.delivered_at,
        o.status in ('shipped', 'delivered') is_revenue, coalesce(sum(i.line_revenue), 0)::decimal(18,2) revenue,
        coalesce(sum(i.quantity), 0) items from silver_orders o left join silver_order_items i using (order_id)
        group by all""",
    "silver_reviews": "select * from bronze_reviews where review_date <= $as_of qualify row_number() over (partition by review_id order by review_id) = 1",
    "silver_events": "select * from bronze_events where occurred_at < $as_of + 1 qualify row_number() over (partition by event_id order by occurred_at desc) = 1",
    "silver_usage_logs": "select * from bronze_usage_logs where occurred_at < $as_of + 1 qualify row_number() over (partition by usage_id order by occurred_at desc) = 1",
    "silver_onboarding_users": "select * from bronze_lk_onboarding where first_login_dt <= $as_of qualify row_number() over (partition by user_id order by first_login_dt) = 1",
    "silver_dim_users": "select * from bronze_dim_users qualify row_number() over (partition by user_id order by user_id) = 1",
    "silver_user_transactions": "select * from bronze_bt_users_transactions where transaction_dt < $as_of + 1",
}

GOLD = {
    "gold_sales_daily": """select order_date::date as sale_date, sum(revenue)::decimal(18,2) daily_revenue, count(*) daily_orders,
        count(distinct customer_id) unique_customers, sum(items) items_sold, (sum(revenue) / count(*))::decimal(18,2) avg_order_value
        from silver_order_totals where is_revenue group by 1""",
    "gold_sales_monthly": """with m as (select date_trunc('month', order_date)::date as month, sum(revenue) rev, count(*) orders,
        count(distinct customer_id) unique_customers from silver_order_totals where is_revenue group by 1)
        select m.month, m.rev::decimal(18,2) monthly_revenue, m.orders monthly_orders, m.unique_customers,
        (m.rev / m.orders)::decimal(18,2) avg_order_value, 100 * (m.rev - p.rev) / nullif(p.rev, 0) mom_revenue_growth_percent
        from m left join m p on p.month = m.month - interval 1 month""",
    "gold_operational_metrics": """select date_trunc('month', order_date)::date as month, count(*) orders_total,
        count(*) filter (status = 'pending') orders_pending, count(*) filter (status = 'processing') orders_processing,
        count(*) filter (status = 'shipped') orders_shipped, count(*) filter (status = 'delivered') orders_delivered,
        count(*) filter (status = 'cancelled') orders_cancelled, count(*) filter (status = 'returned') orders_returned,
        count(*) filter (status = 'cancelled') / count(*) cancellation_rate, count(*) filter (status = 'returned') / count(*) return_rate,
        avg(items) avg_items_per_order,
        avg(epoch(delivered_at - order_date) / 86400.0) filter (status = 'delivered' and delivered_at is not null) avg_delivery_days
        from silver_order_totals group by 1""",
    "gold_customer_analytics": """with o as (select customer_id, count(*) total_orders, sum(revenue) total_revenue,
            min(order_date) first_order_date, max(order_date) last_order_date
            from silver_order_totals where is_revenue group by 1),
        c as (select o.*, s.first_name, s.last_name, s.email, s.city, s.country, s.birth_date, s.registration_date,
            $as_of - last_order_date::date recency_days from o join silver_customers s using (customer_id)),
        scored as (select *, ntile(5) over (order by recency_days desc, customer_id) r,
            ntile(5) over (order by total_orders, customer_id) f, ntile(5) over (order by total_revenue, customer_id) m from c)
        select customer_id, initcap(first_name) || ' ' || initcap(last_name) full_name, lower(email) email, city, country,
          case when birth_date is null then 'Unknown' when date_diff('year', birth_date, $as_of) < 18 then 'Under 18'
               when date_diff('year', birth_date, $as_of) < 25 then '18-24' when date_diff('year', birth_date, $as_of) < 35 then '25-34'
               when date_diff('year', birth_date, $as_of) < 45 then '35-44' when date_diff('year', birth_date, $as_of) < 55 then '45-54'
               when date_diff('year', birth_date, $as_of) < 65 then '55-64' else '65+' end age_group,
          case when $as_of - registration_date < 90 then 'New' when $as_of - registration_date < 365 then 'Recent'
               when $as_of - registration_date < 1095 then 'Regular' else 'Veteran' end customer_lifetime_stage,
          total_orders, total_revenue::decimal(18,2) total_revenue, (total_revenue / total_orders)::decimal(18,2) avg_order_value,
          first_order_date, last_order_date, recency_days, r r_score, f f_score, m m_score, r::varchar || f || m rfm_score,
          case when $as_of - first_order_date::date < 30 then 'New' when r >= 4 and f >= 4 and m >= 4 then 'VIP'
               when f >= 4 and r >= 3 then 'Loyal' when r <= 2 and f >= 3 then 'At Risk' when r = 1 then 'Lost' else 'Regular' end customer_segment,
          (total_revenue / total_orders * total_orders / greatest(($as_of - first_order_date::date + 1) / 365.0, 1 / 12.0) * 3)::decimal(18,2) customer_lifetime_value
        from scored""",
    "gold_product_performance": """with sales as (select product_id, sum(quantity) units, sum(line_revenue) revenue, sum(line_profit) profit
            from silver_order_items i join silver_order_totals o using (order_id) where o.is_revenue group by 1),
        rv as (select product_id, avg(rating) avg_rating, count(*) review_count from silver_reviews group by 1),
        p as (select p.product_id, p.product_name, c.category_name category, p.brand, p.price current_price, p.stock_quantity current_stock,
            coalesce(s.units, 0) total_units_sold, coalesce(s.revenue, 0)::decimal(18,2) total_revenue, coalesce(s.profit, 0)::decimal(18,2) total_profit,
            rv.avg_rating, coalesce(rv.review_count, 0) review_count
            from silver_products p left join silver_product_categories c using (category_id) left join sales s using (product_id) left join rv using (product_id))
        select *, case when current_stock is null then 'Unknown' when current_stock = 0 then 'Out of Stock' when current_stock <= 10 then 'Critical'
               when current_stock <= 50 then 'Low' when current_stock > 1000 then 'Overstock' else 'Normal' end stock_level,
          case when total_revenue <= 0 then 'Poor' when percent_rank() over (order by total_revenue desc, product_id) < 0.1 then 'Best Seller'
               when percent_rank() over (order by total_revenue desc, product_id) < 0.3 then 'Good'
               when percent_rank() over (order by total_revenue desc, product_id) < 0.7 then 'Moderate' else 'Poor' end sales_performance,
          round(10 * (0.5 * cume_dist() over (order by total_revenue) + 0.3 * coalesce(avg_rating, 3) / 5 + 0.2 * (current_stock > 0)::int), 1) product_health_score
        from p""",
    "gold_product_engagement_daily": """select occurred_at::date as date, product_id, count(*) filter (event_type = 'view') views,
        count(*) filter (event_type = 'click') clicks, count(*) filter (event_type = 'add_to_cart') add_to_cart,
        count(*) filter (event_type = 'purchase') purchases, count(distinct customer_id) unique_customers,
        count(*) filter (event_type = 'click') / nullif(count(*) filter (event_type = 'view'), 0) ctr,
        count(*) filter (event_type = 'purchase') / nullif(count(*) filter (event_type = 'view'), 0) conversion_rate
        from silver_events where product_id is not null group by 1, 2""",
    "gold_customer_engagement_daily": """select occurred_at::date as date, customer_id, count(*) events,
        count(distinct product_id) filter (event_type = 'view') products_viewed, count(*) filter (event_type = 'add_to_cart') add_to_cart,
        count(*) filter (event_type = 'purchase') purchases from silver_events where customer_id is not null group by 1, 2""",
    "gold_feature_usage": """select occurred_at::date as date, feature_key, count(*) uses, count(distinct user_id) unique_users
        from silver_usage_logs group by 1, 2""",
    "gold_product_rankings": """with t as (select ($as_of + 1)::timestamp t0),
        raw as (select product_id, sum(case event_type when 'view' then 1 when 'click' then 2 when 'add_to_cart' then 5 else 10 end
              * exp(-ln(2) * epoch(t0 - occurred_at) / 3600 / 72)) raw
            from silver_events, t where occurred_at >= t0 - interval 30 day and occurred_at < t0 group by 1),
        p as (select p.*, c.category_name category, coalesce(raw.raw, 0) raw from silver_products p
            left join silver_product_categories c using (category_id) left join raw using (product_id) where p.is_active),
        s as (select *, coalesce(raw / nullif(max(raw) over (), 0), 0) popularity_score from p),
        s2 as (select product_id, category, popularity_score, (coalesce(stock_quantity, 0) > 0)::int * (1 - popularity_score) cold_score,
            case when price = 0 then 0 else greatest(least((price - coalesce(cost, 0)) / price, 1), 0) end::double profit_score,
            coalesce(exp(-ln(2) * ($as_of - created_at) / 30), 0) freshness_score from s),
        s3 as (select *, (cold_score + profit_score + freshness_score) / 3 strategy_score from s2)
        select *, 0.7 * popularity_score + 0.3 * strategy_score exposure_score,
          row_number() over (order by 0.7 * popularity_score + 0.3 * strategy_score desc, product_id) rank_overall,
          row_number() over (partition by category order by 0.7 * popularity_score + 0.3 * strategy_score desc, product_id) rank_in_category
        from s3""",
    "gold_user_onboarding_metrics": """with u as (select o.*, d.segment from silver_onboarding_users o join silver_dim_users d using (user_id) where d.segment in (1, 2)),
        w as (select u.user_id, u.segment, t.transaction_dt::date d, t.type from u join silver_user_transactions t using (user_id)
            where t.transaction_dt::date between u.first_login_dt and u.first_login_dt + 29),
        ind as (select user_id, d, dense_rank() over (partition by user_id order by d) n from (select distinct user_id, d from w where segment = 1)),
        sel as (select user_id, d, row_number() over (partition by user_id order by d) n from w where segment = 2 and type in (8, 9)),
        habit as (select user_id, min(d) habit_dt from (select * from ind union all select * from sel) where n >= 5 group by 1)
        select u.user_id, u.segment, case u.segment when 1 then 'Individuals' else 'Sellers' end segment_name, u.first_login_dt,
          case u."return" when 0 then true when 1 then false end "drop", u.activacion_dt is not null activation,
          u.setup_dt is not null setup, h.habit_dt is not null habit, h.habit_dt
        from u left join habit h using (user_id)""",
}


def main() -> int:
    src, out, as_of = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
    con = duckdb.connect()
    con.execute(f"set variable as_of = date '{as_of}'")
    # DuckDB has no INITCAP; names here are single words.
    con.execute("create macro initcap(s) as upper(s[1]) || lower(s[2:])")
    timings = []

    def materialise(layer: str, name: str, sql: str) -> None:
        started = time.perf_counter()
        sql = sql.replace("$as_of", "getvariable('as_of')")
        target = out / layer / name
        target.mkdir(parents=True, exist_ok=True)
        con.execute(f"copy ({sql}) to '{target}/part-0.parquet' (format parquet, compression zstd)")
        con.execute(f"create or replace view {name} as select * from read_parquet('{target}/*.parquet')")
        timings.append((name, time.perf_counter() - started))

    for source, columns in SOURCES.items():
        path = src / f"{source}.csv" if (src / f"{source}.csv").exists() else src / source / "*.csv"
        names = [c.strip().strip('"') for c in columns.split(",")]
        types = ", ".join(f"'{n}': 'VARCHAR'" for n in names)
        con.execute(
            f"create or replace temp view src as select * from read_csv('{path}', header = true, columns = {{{types}}}, "
            "ignore_errors = true, strict_mode = false)"
        )
        materialise("bronze", f"bronze_{source}", BRONZE[source])
    for name, sql in SILVER.items():
        materialise("silver", name, sql)
    for name, sql in GOLD.items():
        materialise("gold", name, sql)
    for name, seconds in timings:
        print(f"{name:<34} {seconds:8.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

-- gold_product_performance: one row per product_id (grain) of silver_products
-- (docs/models.md §3.2). Sales count lines of revenue orders, added up from
-- their monthly sums; items of unknown products never reach this table.
-- Reviews up to the as-of date.
with product_sales as (
    select
        product_id,
        sum(units) as units,
        sum(revenue) as revenue,
        sum(profit) as profit
    from silver_product_sales_monthly
    group by product_id
),

product_reviews as (
    select
        product_id,
        avg(cast(rating as double)) as avg_rating,
        count(*) as review_count
    from silver_reviews
    group by product_id
),

products as (
    select
        p.product_id,
        p.product_name,
        c.category_name as category,
        p.brand,
        p.price as current_price,
        p.stock_quantity as current_stock,
        coalesce(s.units, 0) as total_units_sold,
        cast(coalesce(s.revenue, 0) as decimal(18, 2)) as total_revenue,
        cast(coalesce(s.profit, 0) as decimal(18, 2)) as total_profit,
        r.avg_rating,
        coalesce(r.review_count, 0) as review_count
    from silver_products as p
    left join silver_product_categories as c on c.category_id = p.category_id
    left join product_sales as s on s.product_id = p.product_id
    left join product_reviews as r on r.product_id = p.product_id
),

seller_ranks as (
    select
        product_id,
        percent_rank() over (order by total_revenue desc, product_id) as revenue_rank
    from products
    where total_revenue > 0
),

final as (
    select
        p.product_id,
        p.product_name,
        p.category,
        p.brand,
        p.current_price,
        p.current_stock,
        p.total_units_sold,
        p.total_revenue,
        p.total_profit,
        p.avg_rating,
        p.review_count,
        case
            when p.current_stock is null then 'Unknown'
            when p.current_stock = 0 then 'Out of Stock'
            when p.current_stock <= param('critical_stock') then 'Critical'
            when p.current_stock <= param('low_stock') then 'Low'
            when p.current_stock > param('overstock') then 'Overstock'
            else 'Normal'
        end as stock_level,
        case
            when r.revenue_rank is null then 'Poor'
            when r.revenue_rank < param('best_seller_rank') then 'Best Seller'
            when r.revenue_rank < param('good_rank') then 'Good'
            when r.revenue_rank < param('moderate_rank') then 'Moderate'
            else 'Poor'
        end as sales_performance,
        round_half_away(
            10 * (
                0.5 * cume_dist() over (order by p.total_revenue)
                + 0.3 * coalesce(p.avg_rating, 3) / 5
                + 0.2 * case when p.current_stock > 0 then 1 else 0 end
            ),
            1
        ) as product_health_score
    from products as p
    left join seller_ranks as r on r.product_id = p.product_id
)

select * from final

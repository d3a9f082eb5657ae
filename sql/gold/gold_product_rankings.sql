-- gold_product_rankings: one row per active product (is_active = true) that
-- exists at the as-of date (created_at NULL or on/before it, so re-running an
-- older night ranks only what existed then), ranked for exposure. Reference time t0 = as-of + 1 day, 00:00 UTC.
--   raw popularity = Σ weight(event_type) · 2^(−age_hours / half-life) over events
--                    with t0 − window ≤ occurred_at < t0
--   popularity     = raw / max(raw) over active products (0 when that max is 0)
--   cold           = (stock > 0) · (1 − popularity)
--   profit         = clamp((price − cost) / price, 0, 1), 0 when price is 0, cost NULL → 0
--   freshness      = 2^(−product_age_days / freshness half-life), 0 without created_at;
--                    product_age_days = as-of date − created_at
--   strategy       = mean(cold, profit, freshness)
--   exposure       = popularity_weight · popularity + strategy_weight · strategy
with reference as (
    select date_part('epoch', cast(as_of_date() as timestamp)) + 86400 as t0_epoch
),

windowed_events as (
    select
        e.product_id,
        e.event_type,
        (r.t0_epoch - date_part('epoch', e.occurred_at)) / 3600.0 as age_hours
    from silver_events as e
    cross join reference as r
    where date_part('epoch', e.occurred_at) >= r.t0_epoch - param('ranking_window_days') * 86400
      and date_part('epoch', e.occurred_at) < r.t0_epoch
      -- The same window by event_date, a little wider: a constant bound on a
      -- column, so the scan skips the files of other days.
      and e.event_date >= cast(cast(as_of_date() as int) - cast(ceil(param('ranking_window_days')) as int) as date)
      and e.event_date <= as_of_date()
),

-- Summed as decimals: an exact, order-independent sum, so the scores are
-- bit-for-bit the same whatever the partitioning of the run.
raw_popularity as (
    select
        product_id,
        sum(cast(
            case event_type
                when 'view' then param('view_weight')
                when 'click' then param('click_weight')
                when 'add_to_cart' then param('add_to_cart_weight')
                when 'purchase' then param('purchase_weight')
                else 0
            end
            * exp(-ln(2.0) * age_hours / param('popularity_half_life_hours'))
            as decimal(38, 18)
        )) as raw_score
    from windowed_events
    group by product_id
),

active_products as (
    select
        p.product_id,
        c.category_name as category,
        p.price,
        coalesce(p.cost, 0) as cost,
        coalesce(p.stock_quantity, 0) as stock,
        p.created_at,
        coalesce(cast(r.raw_score as double), 0.0) as raw_score
    from silver_products as p
    left join silver_product_categories as c on c.category_id = p.category_id
    left join raw_popularity as r on r.product_id = p.product_id
    where p.is_active
      and (p.created_at is null or p.created_at <= as_of_date())
),

scored as (
    select
        product_id,
        category,
        case
            when max(raw_score) over () = 0 then 0.0
            else raw_score / max(raw_score) over ()
        end as popularity_score,
        case
            when price = 0 then 0.0
            else least(greatest(cast(price - cost as double) / cast(price as double), 0.0), 1.0)
        end as profit_score,
        case
            when created_at is null then 0.0
            else exp(-ln(2.0) * days_between(as_of_date(), created_at) / param('freshness_half_life_days'))
        end as freshness_score,
        stock
    from active_products
),

strategy as (
    select
        product_id,
        category,
        popularity_score,
        case when stock > 0 then 1.0 - popularity_score else 0.0 end as cold_score,
        profit_score,
        freshness_score
    from scored
),

exposure as (
    select
        *,
        (cold_score + profit_score + freshness_score) / 3.0 as strategy_score
    from strategy
),

final as (
    select
        product_id,
        category,
        popularity_score,
        cold_score,
        profit_score,
        freshness_score,
        strategy_score,
        param('popularity_weight') * popularity_score + param('strategy_weight') * strategy_score as exposure_score,
        row_number() over (
            order by param('popularity_weight') * popularity_score + param('strategy_weight') * strategy_score desc, product_id
        ) as rank_overall,
        row_number() over (
            partition by category
            order by param('popularity_weight') * popularity_score + param('strategy_weight') * strategy_score desc, product_id
        ) as rank_in_category
    from exposure
)

select * from final

-- silver_order_items: one row per order_item_id (grain) whose order exists in
-- silver_orders (so also on or before the as-of date); items of a missing
-- order are excluded everywhere (SPEC §3). A missing product keeps the line
-- with cost 0. Line money is rounded to cents, half away from zero:
--   line_revenue = quantity × unit_price × (1 − discount)
--   line_profit  = quantity × (unit_price × (1 − discount) − cost)
-- De-duplication without sorting every row: only the few keys that occur
-- more than once go through the window; the others pass a hash join whose
-- build side is the small set of duplicated keys (hence the right join).
with duplicated_keys as (
    select order_item_id as duplicated_key
    from bronze_order_items
    group by order_item_id
    having count(*) > 1
),
flagged as (
    select
        b.*,
        d.duplicated_key is not null as is_duplicated
    from duplicated_keys as d
    right join bronze_order_items as b on d.duplicated_key = b.order_item_id
),
ranked as (
    select *, cast(1 as bigint) as version_rank
    from flagged
    where not is_duplicated
    union all
    select
        *,
        cast(row_number() over (
            partition by order_item_id
            order by _source_file desc, _source_line desc
        ) as bigint) as version_rank
    from flagged
    where is_duplicated
),

items as (
    select * from ranked where version_rank = 1
),

final as (
    select
        i.order_item_id,
        i.order_id,
        i.product_id,
        i.quantity,
        i.unit_price,
        coalesce(i.discount, 0) as discount,
        coalesce(p.cost, 0) as unit_cost,
        p.product_id is not null as product_known,
        cast(
            i.quantity * i.unit_price * (1 - coalesce(i.discount, 0))
            as decimal(18, 2)
        ) as line_revenue,
        cast(
            i.quantity * (i.unit_price * (1 - coalesce(i.discount, 0)) - coalesce(p.cost, 0))
            as decimal(18, 2)
        ) as line_profit
    from items as i
    inner join silver_orders as o on o.order_id = i.order_id
    left join silver_products as p on p.product_id = i.product_id
)

select * from final

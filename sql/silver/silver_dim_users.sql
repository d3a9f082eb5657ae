-- silver_dim_users: one row per user_id (grain), the last occurrence by source
-- file name and line. segment_name is Individuals (1) or Sellers (2); any
-- other or empty segment is unknown (NULL). Dimension: no as-of filter.
with final as (
    select
        user_id,
        case when segment in (1, 2) then segment end as segment,
        case segment
            when 1 then 'Individuals'
            when 2 then 'Sellers'
        end as segment_name,
        rubro
    from {{ latest_rows('bronze_dim_users') }} as latest
)

select * from final

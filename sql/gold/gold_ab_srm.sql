-- gold_ab_srm: one row per segment_name (Individuals, Sellers, All): does the
-- observed split of users over the onboarding arms match their configured
-- shares? χ² over the k arms, p = the χ² survival function with k − 1 degrees
-- of freedom (for two arms p = erfc(√(χ²/2))), flagged when p < srm_alpha
-- (docs/models.md §3.5, §3.9). treatment_users counts every non-control arm.
with users as (
    select * from gold_user_onboarding_metrics
),

arms as (
    select * from {{ ab_arms() }} as arms
),

-- Users are counted once per segment and arm, then summed for All.
per_segment as (
    select segment_name, ab_group, count(*) as users
    from users
    group by segment_name, ab_group
),

with_total as (
    select * from per_segment
    union all
    select 'All' as segment_name, ab_group, sum(users) as users
    from per_segment
    group by ab_group
),

-- Driven by segments × arms, so an empty arm still counts (as 0 users).
by_arm as (
    select
        s.segment_name,
        a.variant,
        a.share,
        coalesce(u.users, 0) as users
    from (values ('Individuals'), ('Sellers'), ('All')) as s (segment_name)
    cross join arms as a
    left join with_total as u on u.segment_name = s.segment_name and u.ab_group = a.variant
),

expected as (
    select
        *,
        sum(users) over (partition by segment_name) * share as expected_users
    from by_arm
),

counts as (
    select
        segment_name,
        sum(case when variant = setting('control_variant') then users else 0 end) as control_users,
        sum(case when variant <> setting('control_variant') then users else 0 end) as treatment_users,
        max(case when variant = setting('control_variant') then share end) as expected_control_share,
        count(*) as arms,
        case
            when sum(users) > 0
                then sum((users - expected_users) * (users - expected_users) / expected_users)
        end as chi_square
    from expected
    group by segment_name
),

final as (
    select
        segment_name,
        control_users,
        treatment_users,
        expected_control_share,
        chi_square,
        chi2_sf(chi_square, arms - 1) as p_value,
        coalesce(chi2_sf(chi_square, arms - 1) < param('srm_alpha'), false) as srm_detected,
        arms
    from counts
)

select * from final

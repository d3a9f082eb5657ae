-- gold_ab_srm: one row per segment_name (Individuals, Sellers, All): does the
-- observed control/treatment split match control_share? χ² with 1 degree of
-- freedom, p = erfc(√(χ²/2)), flagged when p < srm_alpha (docs/models.md §3.5, §3.8).
with users as (
    select * from gold_user_onboarding_metrics
),

with_total as (
    select segment_name, ab_group from users
    union all
    select 'All' as segment_name, ab_group from users
),

segments as (
    select segment_name
    from (values ('Individuals'), ('Sellers'), ('All')) as s (segment_name)
),

counts as (
    select
        s.segment_name,
        count(case when u.ab_group = 'control' then 1 end) as control_users,
        count(case when u.ab_group = 'treatment' then 1 end) as treatment_users
    from segments as s
    left join with_total as u on u.segment_name = s.segment_name
    group by s.segment_name
),

tested as (
    select
        *,
        srm_test(control_users, treatment_users, param('control_share')) as srm
    from counts
),

final as (
    select
        segment_name,
        control_users,
        treatment_users,
        param('control_share') as expected_control_share,
        get_field(srm, 'chi_square') as chi_square,
        get_field(srm, 'p_value') as p_value,
        coalesce(get_field(srm, 'p_value') < param('srm_alpha'), false) as srm_detected
    from tested
)

select * from final

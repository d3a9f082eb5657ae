//! Engagement, decayed product rankings and feature usage (docs/models.md §3.7) on the
//! hand-made `tests/fixtures/engagement` data, as-of 2026-10-31, so
//! t0 = 2026-11-01 00:00 UTC and the window starts 2026-10-02 00:00.
//!
//! Hand computation of the rankings (weights 1/2/5/10, half-life 72 h):
//! - product 1: e1 view 24 h old → 2^(−1/3) = 0.793701; e2 purchase 72 h → 10 · 0.5;
//!   e3 view exactly at the window edge (720 h) → 2^(−10) = 0.000977; e4 is one
//!   second before the edge → out. raw = 5.794677 = the maximum → popularity 1.
//! - product 2: e5 anonymous click 12 h old → 2 · 2^(−1/6) = 1.781797 → 0.307489;
//!   e6 is at t0 itself (excluded). Stock 0 → cold 0; cost NULL → profit 1;
//!   created on the as-of date → freshness 1.
//! - product 4: e7's last occurrence (the re-sent one, 21:00 −03:00 = 00:00 UTC)
//!   is a view 96 h old → 2^(−4/3) = 0.396850 → 0.068485; cost above price →
//!   profit clamped to 0; created 60 days before → freshness 0.25.
//! - product 3: no events; price 0 → profit 0; no created_at → freshness 0.
//! - product 5 is inactive: not ranked, but its events count in engagement.
//!   strategy = mean(cold, profit, freshness); exposure = 0.7 · pop + 0.3 · strategy.

use datafusion::arrow::array::Float64Array;
use datafusion::prelude::{ParquetReadOptions, SessionContext};

use crate::support::*;

#[tokio::test]
async fn engagement_gold_tables_match_hand_computed_values() {
    let out = tempfile::tempdir().unwrap();
    let results = run(config(&fixture("engagement"), out.path()), "2026-10-31").await;
    assert!(results.outcome().is_ok(), "{}", results.summary_table());
    let o = out.path();

    // product_id | category | popularity | cold | profit | freshness | strategy | exposure | rank | rank in category
    assert_eq!(
        table_text(o, "gold", "gold_product_rankings").await,
        expected_table(
            "
            product_id | category | popularity_score | cold_score | profit_score | freshness_score | strategy_score | exposure_score | rank_overall | rank_in_category
            1 | Computers | 1.000000 | 0.000000 | 0.400000 | 0.500000 | 0.300000 | 0.790000 | 1 | 1
            2 | Computers | 0.307489 | 0.000000 | 1.000000 | 1.000000 | 0.666667 | 0.415242 | 2 | 2
            3 | Audio     | 0.000000 | 1.000000 | 0.000000 | 0.000000 | 0.333333 | 0.100000 | 4 | 2
            4 | Audio     | 0.068485 | 0.931515 | 0.000000 | 0.250000 | 0.393838 | 0.166091 | 3 | 1
            "
        )
    );

    // Events e1..e8 after dedupe (e7's last version is product 4) and the as-of
    // cut (e6 is on 2026-11-01); e9's type `like` was quarantined in bronze.
    assert_eq!(
        table_text(o, "gold", "gold_product_engagement_daily").await,
        expected_table(
            "
            date | product_id | views | clicks | add_to_cart | purchases | unique_customers | ctr | conversion_rate
            2026-10-01 | 1 | 1 | 0 | 0 | 0 | 1 | 0.000000 | 0.000000
            2026-10-02 | 1 | 1 | 0 | 0 | 0 | 1 | 0.000000 | 0.000000
            2026-10-28 | 4 | 1 | 0 | 0 | 0 | 1 | 0.000000 | 0.000000
            2026-10-29 | 1 | 0 | 0 | 0 | 1 | 1 | NULL     | NULL
            2026-10-31 | 1 | 1 | 0 | 0 | 0 | 1 | 0.000000 | 0.000000
            2026-10-31 | 2 | 0 | 1 | 0 | 0 | 0 | NULL     | NULL
            2026-10-31 | 5 | 0 | 0 | 0 | 1 | 1 | NULL     | NULL
            "
        )
    );
    assert_eq!(
        table_text(o, "gold", "gold_customer_engagement_daily").await,
        expected_table(
            "
            date | customer_id | events | products_viewed | add_to_cart | purchases
            2026-10-01 | 2 | 1 | 1 | 0 | 0
            2026-10-02 | 2 | 1 | 1 | 0 | 0
            2026-10-28 | 3 | 1 | 1 | 0 | 0
            2026-10-29 | 1 | 1 | 0 | 0 | 1
            2026-10-31 | 1 | 1 | 1 | 0 | 0
            2026-10-31 | 4 | 1 | 0 | 0 | 1
            "
        )
    );
    // u2's malformed JSON is kept; u4 is re-sent; u5 is after the as-of date.
    assert_eq!(
        table_text(o, "gold", "gold_feature_usage").await,
        expected_table(
            "
            date | feature_key | uses | unique_users
            2026-10-30 | search   | 3 | 2
            2026-10-31 | wishlist | 1 | 1
            "
        )
    );
    assert_eq!(
        table_rows(
            o,
            "silver",
            "silver_usage_logs",
            Some("select usage_id, metadata from silver_usage_logs where usage_id in ('u2', 'u4')")
        )
        .await,
        expected("u2 | {not json\nu4 | {\"dup\":true}")
    );
    let events = results
        .models
        .iter()
        .find(|m| m.name == "bronze_events")
        .unwrap();
    assert_eq!(
        (
            events.rows_written,
            events.quarantined_rows,
            events.duplicates_dropped
        ),
        (9, 1, Some(1))
    );
}

/// Every Float64 of the rankings as raw bits, in product order.
async fn ranking_bits(output: &std::path::Path) -> Vec<u64> {
    let ctx = SessionContext::new();
    let dir = output.join("gold/gold_product_rankings");
    ctx.register_parquet(
        "r",
        &format!("{}/", dir.display()),
        ParquetReadOptions::default(),
    )
    .await
    .unwrap();
    let batches = ctx
        .sql("select popularity_score, cold_score, profit_score, freshness_score, strategy_score, exposure_score from r order by product_id")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut bits = Vec::new();
    for b in &batches {
        for i in 0..b.num_rows() {
            for c in b.columns() {
                bits.push(
                    c.as_any()
                        .downcast_ref::<Float64Array>()
                        .unwrap()
                        .value(i)
                        .to_bits(),
                );
            }
        }
    }
    bits
}

#[tokio::test]
async fn rankings_are_byte_identical_across_runs() {
    let data = generated(0.01, 11, 0.0);
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let mut cfg_b = config(data.path(), b.path());
    // A different plan shape must not change a single bit.
    cfg_b.target_partitions = 1;
    assert!(
        run(config(data.path(), a.path()), "2026-10-31")
            .await
            .outcome()
            .is_ok()
    );
    assert!(run(cfg_b, "2026-10-31").await.outcome().is_ok());
    let (bits_a, bits_b) = (ranking_bits(a.path()).await, ranking_bits(b.path()).await);
    assert!(bits_a.len() > 100, "rankings of the generated products");
    assert_eq!(bits_a, bits_b);
}

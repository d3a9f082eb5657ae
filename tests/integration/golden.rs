//! Golden tests on the hand-made `tests/fixtures/shop` data, as-of 2026-10-31.
//!
//! Every expected value below was computed by hand from docs/models.md §3 (the working
//! is in the comments); none was produced by running medallion. The fixture
//! holds: a dozen customers with a duplicate whose *earlier* line has the
//! later `updated_at`, orders of every status, a future-dated order and one
//! that is future only in UTC (23:30 −03:00 on the as-of day), an order of an
//! unknown customer, an item of an unknown product, an item whose order does
//! not exist, discounts (0.125 exercises rounding), duplicate orders, reviews
//! and products, CRLF line ends and a shuffled upper-case header, and a
//! malformed row of each kind (field count, type, NULL key, range, set).

use crate::support::*;

const AS_OF: &str = "2026-10-31";

/// The shop fixture run once for the whole test binary (as-of [`AS_OF`]);
/// every golden test reads its output.
fn shop_run() -> &'static std::path::Path {
    &shop().0
}

/// The results of [`shop_run`].
fn shop_results() -> &'static medallion::run::RunResults {
    &shop().1
}

fn shop() -> &'static (std::path::PathBuf, medallion::run::RunResults) {
    static OUTPUT: std::sync::OnceLock<(std::path::PathBuf, medallion::run::RunResults)> =
        std::sync::OnceLock::new();
    OUTPUT.get_or_init(|| {
        let out = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("golden-shop-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let config = config(&fixture("shop"), &out);
        // Its own runtime: each test has one, and this run outlives the first.
        let results = std::thread::spawn(move || {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(run(config, AS_OF))
        })
        .join()
        .unwrap();
        assert!(results.outcome().is_ok(), "{}", results.summary_table());
        (out, results)
    })
}

#[tokio::test]
async fn ecommerce_gold_tables_match_hand_computed_values() {
    let o = shop_run();

    // Revenue orders (shipped/delivered, on or before the as-of date in UTC):
    // 1 (c1, 900.00 = 1000 × 0.9), 2 (c1, 40.00), 3 (c2, 50.00), 4 (c3, 200.00),
    // 5 (c4, 1000 + 30 for an unknown product = 1030.00), 6 (c5, last duplicate
    // says SHIPPED: 3 × 20 × 0.85 = 51.00), 7 (c6, 400.00), 8 (c7, 100.00),
    // 9 (c8, 1000 × 0.75 = 750.00), 10 (c9, no items: 0.00), 11 (c11,
    // 19.99 × 0.875 = 17.49125 → 17.49), 16 (unknown customer 99, 50.00).
    assert_eq!(
        table_text(o, "gold", "gold_sales_daily").await,
        expected_table(
            "
            sale_date | daily_revenue | daily_orders | unique_customers | items_sold | avg_order_value
            2025-10-01 | 40.00   | 1 | 1 | 2 | 40.00
            2026-04-01 | 200.00  | 1 | 1 | 1 | 200.00
            2026-05-05 | 750.00  | 1 | 1 | 1 | 750.00
            2026-06-15 | 100.00  | 1 | 1 | 2 | 100.00
            2026-07-20 | 51.00   | 1 | 1 | 3 | 51.00
            2026-08-01 | 1030.00 | 1 | 1 | 2 | 1030.00
            2026-09-25 | 17.49   | 1 | 1 | 1 | 17.49
            2026-10-01 | 0.00    | 1 | 1 | 0 | 0.00
            2026-10-20 | 500.00  | 3 | 3 | 4 | 166.67
            2026-10-30 | 900.00  | 1 | 1 | 1 | 900.00
            "
        )
    );

    // Growth vs the previous calendar month: April has no March → NULL;
    // May 100 × (750 − 200) / 200 = 275; June 100 × (100 − 750) / 750 = −86.666667;
    // July −49; August 100 × 979 / 51 = 1919.607843; September
    // 100 × (17.49 − 1030) / 1030 = −98.301942; October 100 × (1400 − 17.49) / 17.49 = 7904.574042.
    assert_eq!(
        table_text(o, "gold", "gold_sales_monthly").await,
        expected_table(
            "
            month | monthly_revenue | monthly_orders | unique_customers | avg_order_value | mom_revenue_growth_percent
            2025-10-01 | 40.00   | 1 | 1 | 40.00   | NULL
            2026-04-01 | 200.00  | 1 | 1 | 200.00  | NULL
            2026-05-01 | 750.00  | 1 | 1 | 750.00  | 275.000000
            2026-06-01 | 100.00  | 1 | 1 | 100.00  | -86.666667
            2026-07-01 | 51.00   | 1 | 1 | 51.00   | -49.000000
            2026-08-01 | 1030.00 | 1 | 1 | 1030.00 | 1919.607843
            2026-09-01 | 17.49   | 1 | 1 | 17.49   | -98.301942
            2026-10-01 | 1400.00 | 5 | 5 | 280.00  | 7904.574042
            "
        )
    );

    // All orders up to the as-of date by month. October: 1 delivered (1.5 d),
    // 3 shipped, 7 delivered (2 d), 10 shipped (0 items), 12 cancelled,
    // 13 pending, 16 delivered (2 d) → 7 orders, 7 items, delivery 5.5 / 3.
    // April's only order is delivered without delivered_at → NULL days.
    assert_eq!(
        table_text(o, "gold", "gold_operational_metrics").await,
        expected_table(
            "
            month | orders_total | orders_pending | orders_processing | orders_shipped | orders_delivered | orders_cancelled | orders_returned | cancellation_rate | return_rate | avg_items_per_order | avg_delivery_days
            2025-10-01 | 1 | 0 | 0 | 0 | 1 | 0 | 0 | 0.000000 | 0.000000 | 2.000000 | 2.000000
            2026-04-01 | 1 | 0 | 0 | 0 | 1 | 0 | 0 | 0.000000 | 0.000000 | 1.000000 | NULL
            2026-05-01 | 1 | 0 | 0 | 0 | 1 | 0 | 0 | 0.000000 | 0.000000 | 1.000000 | 1.500000
            2026-06-01 | 1 | 0 | 0 | 0 | 1 | 0 | 0 | 0.000000 | 0.000000 | 2.000000 | 1.000000
            2026-07-01 | 1 | 0 | 0 | 1 | 0 | 0 | 0 | 0.000000 | 0.000000 | 3.000000 | NULL
            2026-08-01 | 2 | 0 | 0 | 0 | 1 | 0 | 1 | 0.000000 | 0.500000 | 1.500000 | 3.000000
            2026-09-01 | 2 | 0 | 1 | 0 | 1 | 0 | 0 | 0.000000 | 0.000000 | 1.000000 | 2.000000
            2026-10-01 | 7 | 1 | 0 | 2 | 3 | 1 | 0 | 0.142857 | 0.000000 | 1.000000 | 1.833333
            "
        )
    );

    // Products (unknown product 999 never appears). Revenue-order lines:
    // 101: 900 + 1000 + 750 = 2650.00, profit 200 + 300 + 50 = 550.00, 3 units;
    // 102: 40 + 51 + 17.49 = 108.49, profit 24 + 27 + 9.49125 → 60.49, 6 units;
    // 103: 50 + 100 + 50 = 200.00 (cost NULL → 0), 4 units; 104: 200 + 400, profit 150.
    // Ratings: 101 (5, 4) → 4.5; 103's duplicate review keeps the last (3);
    // 104's only review is after the as-of date. Revenue ranks (DESC):
    // 101 0, 104 1/3 → Moderate, 103 2/3 → Moderate, 102 1 → Poor.
    // cume_dist (ASC): 105 & 106 2/6, 102 3/6, 103 4/6, 104 5/6, 101 1.
    // health: 101 10 × (0.5 + 0.27 + 0.2) = 9.7; 102 10 × (0.25 + 0.18) = 4.3;
    // 103 10 × (0.3333 + 0.18 + 0.2) = 7.1; 104 10 × (0.4167 + 0.18 + 0.2) = 8.0;
    // 105 10 × (0.1667 + 0.18 + 0.2) = 5.5; 106 (stock NULL) 10 × (0.1667 + 0.18) = 3.5.
    assert_eq!(
        table_text(o, "gold", "gold_product_performance").await,
        expected_table(
            "
            product_id | product_name | category | brand | current_price | current_stock | total_units_sold | total_revenue | total_profit | avg_rating | review_count | stock_level | sales_performance | product_health_score
            101 | Laptop Pro | Computers   | Acme    | 1000.00 | 5    | 3 | 2650.00 | 550.00 | 4.500000 | 2 | Critical     | Best Seller | 9.700000
            102 | Mouse      | Peripherals | Globex  | 20.00   | 0    | 6 | 108.49  | 60.49  | NULL     | 0 | Out of Stock | Poor        | 4.300000
            103 | Keyboard   | Peripherals | Globex  | 50.00   | 30   | 4 | 200.00  | 200.00 | 3.000000 | 1 | Low          | Moderate    | 7.100000
            104 | Monitor    | Computers   | Acme    | 200.00  | 500  | 3 | 600.00  | 150.00 | NULL     | 0 | Normal       | Moderate    | 8.000000
            105 | Cable      | Accessories | Initech | 10.00   | 2000 | 0 | 0.00    | 0.00   | NULL     | 0 | Overstock    | Poor        | 5.500000
            106 | Webcam     | NULL        | Hooli   | 80.00   | NULL | 0 | 0.00    | 0.00   | 3.000000 | 1 | Unknown      | Poor        | 3.500000
            "
        )
    );

    // Customers with a revenue order (99 is unknown, 12 only cancelled, 10 none).
    // recency (DESC, id) → r: 3 (213 d) 1, 8 (179) 1, 7 (138) 2, 5 (103) 2,
    // 4 (91) 3, 11 (36) 3, 9 (30) 4, 2 (11) 4, 6 (11) 5, 1 (1) 5.
    // orders (ASC, id) → f: 2 1, 3 1, 4 2, 5 2, 6 3, 7 3, 8 4, 9 4, 11 5, 1 5.
    // revenue (ASC, id) → m: 9 1, 11 1, 2 2, 5 2, 7 3, 3 3, 6 4, 8 4, 1 5, 4 5.
    // Segments: 2 and 6 New (first order 11 days ago); 9's first order is exactly
    // 30 days old → not New, r4 f4 → Loyal. CLV = aov × orders / max((days + 1) / 365, 1/12) × 3:
    // 1: 470 × 2 / (396 / 365) × 3 = 2599.24; 2: 50 × 12 × 3 = 1800.00; 4: 1030 / (92 / 365) × 3 = 12259.24.
    // Ages on 2026-10-31: 2 turns 18 tomorrow → Under 18; 11 turned 18 today;
    // 4 turned 66 today; 9 turns 64 tomorrow → 55-64. Tenure: 6 exactly 90 days → Recent,
    // 11 364 days → Recent. Customer 1's newest version (by updated_at) is the first line.
    assert_eq!(
        table_text(o, "gold", "gold_customer_analytics").await,
        expected_table(
            "
            customer_id | full_name | email | city | country | age_group | customer_lifetime_stage | total_orders | total_revenue | avg_order_value | first_order_date | last_order_date | recency_days | r_score | f_score | m_score | rfm_score | customer_segment | customer_lifetime_value
            1  | Ana García      | ana.garcia@example.com | Santiago      | CL | 35-44    | Veteran | 2 | 940.00  | 470.00  | 2025-10-01T09:00:00Z | 2026-10-30T10:00:00Z | 1   | 5 | 5 | 5 | 555 | VIP      | 2599.24
            2  | Bruno O'Brien   | bruno@example.com      | Lima          | PE | Under 18 | New     | 1 | 50.00   | 50.00   | 2026-10-20T12:00:00Z | 2026-10-20T12:00:00Z | 11  | 4 | 1 | 2 | 412 | New      | 1800.00
            3  | Carla Díaz      | carla@example.com      | Bogotá        | CO | Unknown  | Regular | 1 | 200.00  | 200.00  | 2026-04-01T08:00:00Z | 2026-04-01T08:00:00Z | 213 | 1 | 1 | 3 | 113 | Lost     | 1023.36
            4  | Diego Silva     | diego@example.com      | São Paulo, SP | BR | 65+      | Regular | 1 | 1030.00 | 1030.00 | 2026-08-01T00:00:00Z | 2026-08-01T00:00:00Z | 91  | 3 | 2 | 5 | 325 | Regular  | 12259.24
            5  | Elena Rojas     | elena@example.com      | Lima          | PE | 35-44    | Veteran | 1 | 51.00   | 51.00   | 2026-07-20T10:00:00Z | 2026-07-20T10:00:00Z | 103 | 2 | 2 | 2 | 222 | Regular  | 536.97
            6  | Felipe Soto     | felipe@example.com     | Santiago      | CL | 25-34    | Recent  | 1 | 400.00  | 400.00  | 2026-10-20T10:00:00Z | 2026-10-20T10:00:00Z | 11  | 5 | 3 | 4 | 534 | New      | 14400.00
            7  | Gabriela Castro | gabi@example.com       | Córdoba       | AR | 45-54    | Veteran | 1 | 100.00  | 100.00  | 2026-06-15T10:00:00Z | 2026-06-15T10:00:00Z | 138 | 2 | 3 | 3 | 233 | At Risk  | 787.77
            8  | Hugo Muñoz      | hugo@example.com       | Madrid        | ES | 25-34    | Veteran | 1 | 750.00  | 750.00  | 2026-05-05T10:00:00Z | 2026-05-05T10:00:00Z | 179 | 1 | 4 | 4 | 144 | At Risk  | 4562.50
            9  | Irene Lopez     | irene@example.com      | Austin        | US | 55-64    | Regular | 1 | 0.00    | 0.00    | 2026-10-01T10:00:00Z | 2026-10-01T10:00:00Z | 30  | 4 | 4 | 1 | 441 | Loyal    | 0.00
            11 | Karina Núñez    | karina@example.com     | Lima          | PE | 18-24    | Recent  | 1 | 17.49   | 17.49   | 2026-09-25T10:00:00Z | 2026-09-25T10:00:00Z | 36  | 3 | 5 | 1 | 351 | Loyal    | 517.61
            "
        )
    );
}

#[tokio::test]
async fn gold_columns_have_the_storage_types_of_the_spec() {
    let out = shop_run();
    let schema = table_schema(out, "gold", "gold_customer_analytics").await;
    for expected in [
        "customer_id: Int64",
        "total_orders: Int64",
        "total_revenue: Decimal128(18, 2)",
        "avg_order_value: Decimal128(18, 2)",
        "customer_lifetime_value: Decimal128(18, 2)",
        "first_order_date: Timestamp(µs, \"UTC\")",
        "recency_days: Int64",
        "r_score: Int64",
        "rfm_score: Utf8",
    ] {
        assert!(
            schema.contains(&expected.to_string()),
            "{expected} not in {schema:?}"
        );
    }
    let schema = table_schema(out, "gold", "gold_sales_monthly").await;
    assert!(schema.contains(&"month: Date32".to_string()), "{schema:?}");
    assert!(
        schema.contains(&"mom_revenue_growth_percent: Float64".to_string()),
        "{schema:?}"
    );
    let schema = table_schema(out, "bronze", "bronze_orders").await;
    for expected in [
        "order_date: Timestamp(µs, \"UTC\")",
        "shipping_cost: Decimal128(18, 2)",
        "_source_line: Int64",
        "_run_id: Utf8",
    ] {
        assert!(
            schema.contains(&expected.to_string()),
            "{expected} not in {schema:?}"
        );
    }
}

#[tokio::test]
async fn quarantine_keeps_every_unusable_row_with_file_line_and_reason() {
    let out = shop_run();
    let q = |source: &'static str| {
        let o = out.to_path_buf();
        async move {
            table_rows(
                &o,
                "_quarantine",
                source,
                Some(&format!(
                    "select _source_file, _source_line, reason from {source}"
                )),
            )
            .await
        }
    };
    assert_eq!(
        q("orders").await,
        expected(
            "
            orders.csv | 21 | column `status`: `lost` is not one of pending, processing, shipped, delivered, cancelled, returned
            orders.csv | 22 | column `order_date`: `yesterday` is not a timestamp (expected YYYY-MM-DD HH:MM:SS or ISO 8601)
            orders.csv | 23 | expected 7 fields as in the header, found 4
            orders.csv | 24 | primary key `order_id` is empty
            "
        )
    );
    // A quoted review text spans two lines: line numbers are those of the file.
    assert_eq!(
        q("reviews").await,
        expected(
            "
            reviews.csv | 9  | column `rating`: `6` is outside 1..5
            reviews.csv | 10 | column `review_date`: `01/10/2026` is not a date (expected YYYY-MM-DD)
            "
        )
    );
    assert_eq!(
        q("order_items").await,
        expected(
            "
            order_items.csv | 21 | column `quantity`: `0` is below the minimum 1
            order_items.csv | 22 | column `discount`: `1.5` is outside 0..1
            order_items.csv | 23 | column `unit_price`: `abc` is not a decimal number
            "
        )
    );
    assert_eq!(
        q("products").await,
        expected(
            "
            products.csv | 9  | column `price`: `-5.00` is below the minimum 0
            products.csv | 10 | column `stock_quantity`: `many` is not an integer
            products.csv | 11 | column `is_active`: `maybe` is not a boolean (true/false/1/0/yes/no)
            "
        )
    );
    let raw = table_rows(
        out,
        "_quarantine",
        "customers",
        Some("select raw_values from customers where _source_line = 15"),
    )
    .await;
    assert_eq!(raw, vec!["13,too,few,fields@example.com"]);

    let results = shop_results();
    let by_name = |name: &str| {
        results
            .models
            .iter()
            .find(|m| m.name == name)
            .unwrap()
            .clone()
    };
    let orders = by_name("bronze_orders");
    assert_eq!(
        (
            orders.rows_written,
            orders.quarantined_rows,
            orders.duplicates_dropped
        ),
        (19, 4, Some(1))
    );
    let customers = by_name("bronze_customers");
    assert_eq!(
        (
            customers.rows_written,
            customers.quarantined_rows,
            customers.duplicates_dropped
        ),
        (13, 3, Some(1))
    );
    assert_eq!(
        by_name("silver_orders").rows_written,
        16,
        "19 rows − 1 duplicate − 2 after the as-of date"
    );
}

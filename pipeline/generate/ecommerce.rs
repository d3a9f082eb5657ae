//! TechStore e-commerce sources: customers, categories, products, orders,
//! order items, reviews, click-stream events and feature usage logs.

use std::path::PathBuf;

use chrono::{Duration, NaiveDateTime, NaiveTime};
use rand::Rng;

use super::names::{BRANDS, CATEGORIES, CITIES, FEATURES, FIRST_NAMES, LAST_NAMES, PAYMENTS};
use super::{
    CsvOut, GenerateOptions, day, instant_between, money, pick, skewed, ts, ts_iso, weighted,
};
use crate::error::Result;

pub(super) fn generate(o: &GenerateOptions) -> Result<Vec<(PathBuf, usize)>> {
    let end = o.end_date.and_time(NaiveTime::MIN) + Duration::days(1);
    let n_customers = o.count(100_000.0, 20);
    let n_products = o.count(10_000.0, 30);
    let n_orders = o.count(1_000_000.0, 60);
    let n_reviews = o.count(200_000.0, 20);
    let n_events = o.count(5_000_000.0, 200);
    let n_usage = o.count(1_000_000.0, 50);
    let mut written = Vec::new();

    // Customers: registrations over five years; a few re-sent with a later updated_at.
    let mut rng = o.rng("customers");
    let mut out = CsvOut::create(
        o,
        "customers.csv",
        &[
            "customer_id",
            "first_name",
            "last_name",
            "email",
            "gender",
            "birth_date",
            "city",
            "country",
            "registration_date",
            "updated_at",
        ],
    )?;
    let mut registered = Vec::with_capacity(n_customers);
    for id in 1..=n_customers {
        let reg = instant_between(
            &mut rng,
            end - Duration::days(5 * 365),
            end - Duration::days(1),
        );
        registered.push(reg);
        let first = *pick(&mut rng, FIRST_NAMES);
        let last = *pick(&mut rng, LAST_NAMES);
        let (city, country) = *pick(&mut rng, CITIES);
        let birth = if rng.random_bool(0.08) {
            String::new()
        } else {
            day((end - Duration::days(rng.random_range(16 * 365..80 * 365))).date())
        };
        let email = format!(
            "{}.{}{}@Example.com",
            first,
            last.replace([' ', '\''], ""),
            id
        )
        .to_uppercase();
        let gender = weighted(&mut rng, &[("F", 48.0), ("M", 48.0), ("", 4.0)]).to_string();
        let updated = instant_between(&mut rng, reg, end);
        let mut fields = vec![
            id.to_string(),
            first.into(),
            last.into(),
            email,
            gender,
            birth,
            city.into(),
            country.into(),
            day(reg.date()),
            ts(updated),
        ];
        out.row(&fields)?;
        if rng.random_bool(0.01) {
            // A later correction of the same customer: silver keeps this one.
            fields[6] = pick(&mut rng, CITIES).0.into();
            fields[9] = ts(updated + Duration::hours(rng.random_range(1..500)));
            out.row(&fields)?;
        }
    }
    written.push(out.finish()?);

    let mut out = CsvOut::create(
        o,
        "product_categories.csv",
        &["category_id", "category_name", "parent_category_id"],
    )?;
    for (i, (name, parent)) in CATEGORIES.iter().enumerate() {
        out.row(&[
            (i + 1).to_string(),
            name.to_string(),
            parent.map(|p| (p + 1).to_string()).unwrap_or_default(),
        ])?;
    }
    written.push(out.finish()?);

    // Products: log-normal-ish prices, margins 10–60 %, stock from none to overstock.
    let mut rng = o.rng("products");
    let mut out = CsvOut::create(
        o,
        "products.csv",
        &[
            "product_id",
            "product_name",
            "category_id",
            "brand",
            "price",
            "cost",
            "stock_quantity",
            "created_at",
            "is_active",
        ],
    )?;
    let mut prices = Vec::with_capacity(n_products);
    for id in 1..=n_products {
        let price: i64 = (10f64.powf(rng.random_range(0.7..3.3)) * 100.0) as i64;
        let price = if rng.random_bool(0.003) { 0 } else { price };
        prices.push(price);
        let cost = if rng.random_bool(0.05) {
            String::new()
        } else {
            money(price * rng.random_range(40..90) / 100)
        };
        let stock = *weighted(
            &mut rng,
            &[(0i64, 6.0), (5, 6.0), (30, 14.0), (300, 60.0), (3000, 14.0)],
        );
        let stock = if stock == 0 {
            0
        } else {
            rng.random_range(1..=stock)
        };
        let created = instant_between(
            &mut rng,
            end - Duration::days(4 * 365),
            end - Duration::days(1),
        );
        let category = rng.random_range(1..=CATEGORIES.len());
        out.row(&[
            id.to_string(),
            format!(
                "{} {} {}",
                pick(&mut rng, BRANDS),
                CATEGORIES[category - 1]
                    .0
                    .split(',')
                    .next()
                    .unwrap_or("Item"),
                id
            ),
            category.to_string(),
            pick(&mut rng, BRANDS).to_string(),
            money(price),
            cost,
            stock.to_string(),
            day(created.date()),
            if rng.random_bool(0.92) {
                "true"
            } else {
                "false"
            }
            .into(),
        ])?;
    }
    written.push(out.finish()?);

    // Orders and items: customers and products picked with a power-law skew.
    let mut rng = o.rng("orders");
    let mut orders = CsvOut::create(
        o,
        "orders.csv",
        &[
            "order_id",
            "customer_id",
            "order_date",
            "status",
            "payment_method",
            "shipping_cost",
            "delivered_at",
        ],
    )?;
    let mut items = CsvOut::create(
        o,
        "order_items.csv",
        &[
            "order_item_id",
            "order_id",
            "product_id",
            "quantity",
            "unit_price",
            "discount",
        ],
    )?;
    let mut item_id = 0usize;
    for order_id in 1..=n_orders {
        let customer = skewed(&mut rng, n_customers, 2.5);
        let placed = instant_between(
            &mut rng,
            registered[customer].max(end - Duration::days(3 * 365)),
            end,
        );
        let age_days = (end - placed).num_days();
        let status = if age_days < 3 {
            *weighted(
                &mut rng,
                &[
                    ("pending", 50.0),
                    ("processing", 35.0),
                    ("shipped", 10.0),
                    ("cancelled", 5.0),
                ],
            )
        } else if age_days < 10 {
            *weighted(
                &mut rng,
                &[
                    ("processing", 10.0),
                    ("shipped", 40.0),
                    ("delivered", 40.0),
                    ("cancelled", 10.0),
                ],
            )
        } else {
            *weighted(
                &mut rng,
                &[("delivered", 80.0), ("cancelled", 12.0), ("returned", 8.0)],
            )
        };
        let delivered_at = if status == "delivered" || status == "returned" {
            ts(placed + Duration::hours(rng.random_range(20..240)))
        } else {
            String::new()
        };
        // Some exports mix ISO 8601 and plain timestamps: both are valid input.
        let placed_text = if rng.random_bool(0.2) {
            ts_iso(placed)
        } else {
            ts(placed)
        };
        let status_text = if rng.random_bool(0.05) {
            status.to_uppercase()
        } else {
            status.to_string()
        };
        orders.row(&[
            order_id.to_string(),
            (customer + 1).to_string(),
            placed_text,
            status_text,
            pick(&mut rng, PAYMENTS).to_string(),
            money(*weighted(
                &mut rng,
                &[(0i64, 40.0), (499, 30.0), (999, 20.0), (1999, 10.0)],
            )),
            delivered_at,
        ])?;
        let lines = 1 + (rng.random::<f64>().ln() / 0.6f64.ln()).floor().min(8.0) as usize;
        for _ in 0..lines {
            item_id += 1;
            let product = skewed(&mut rng, n_products, 2.0);
            let discount = *weighted(
                &mut rng,
                &[
                    ("", 70.0),
                    ("0.05", 10.0),
                    ("0.1", 10.0),
                    ("0.15", 5.0),
                    ("0.25", 5.0),
                ],
            );
            items.row(&[
                item_id.to_string(),
                order_id.to_string(),
                (product + 1).to_string(),
                (*weighted(&mut rng, &[(1, 75.0), (2, 17.0), (3, 6.0), (5, 2.0)])).to_string(),
                money(prices[product]),
                discount.to_string(),
            ])?;
        }
    }
    written.push(orders.finish()?);
    written.push(items.finish()?);

    let mut rng = o.rng("reviews");
    let mut out = CsvOut::create(
        o,
        "reviews.csv",
        &[
            "review_id",
            "product_id",
            "customer_id",
            "rating",
            "review_date",
            "review_text",
        ],
    )?;
    for id in 1..=n_reviews {
        let rating = *weighted(
            &mut rng,
            &[(5, 45.0), (4, 25.0), (3, 12.0), (2, 8.0), (1, 10.0)],
        );
        let text = match rating {
            5 => "Excellent, would buy again",
            4 => "Good value",
            3 => "OK, nothing special",
            2 => "Not great, \"meh\" quality",
            _ => "Broke after a week,\nvery disappointed",
        };
        out.row(&[
            id.to_string(),
            (skewed(&mut rng, n_products, 2.0) + 1).to_string(),
            if rng.random_bool(0.1) {
                String::new()
            } else {
                (skewed(&mut rng, n_customers, 2.5) + 1).to_string()
            },
            rating.to_string(),
            day(instant_between(&mut rng, end - Duration::days(3 * 365), end).date()),
            text.into(),
        ])?;
    }
    written.push(out.finish()?);

    // Click-stream: sessions walking view → click → add_to_cart → purchase with drop-off.
    let mut rng = o.rng("events");
    let mut out = CsvOut::create(
        o,
        "events.csv",
        &[
            "event_id",
            "customer_id",
            "product_id",
            "event_type",
            "occurred_at",
            "session_id",
        ],
    )?;
    let mut written_events = 0usize;
    let mut session = 0usize;
    while written_events < n_events {
        session += 1;
        let anonymous = rng.random_bool(0.15);
        let customer = if anonymous {
            String::new()
        } else {
            (skewed(&mut rng, n_customers, 2.5) + 1).to_string()
        };
        let product = (skewed(&mut rng, n_products, 2.2) + 1).to_string();
        let mut at: NaiveDateTime = instant_between(&mut rng, end - Duration::days(90), end);
        let funnel: [(&str, f64); 4] = [
            ("view", 1.0),
            ("click", 0.35),
            ("add_to_cart", 0.3),
            ("purchase", 0.4),
        ];
        for (step, p) in funnel {
            if !rng.random_bool(p) || written_events >= n_events || at >= end {
                break;
            }
            written_events += 1;
            let row = vec![
                format!("e{written_events:09}"),
                customer.clone(),
                product.clone(),
                step.to_string(),
                ts(at),
                format!("s{session:08}"),
            ];
            out.row(&row)?;
            // Exporters re-send events: the same event_id again.
            if rng.random_bool(0.01) {
                out.row(&row)?;
            }
            at += Duration::seconds(rng.random_range(5..600));
        }
    }
    written.push(out.finish()?);

    let mut rng = o.rng("usage_logs");
    let mut out = CsvOut::create(
        o,
        "usage_logs.csv",
        &[
            "usage_id",
            "user_id",
            "feature_key",
            "occurred_at",
            "metadata",
        ],
    )?;
    for id in 1..=n_usage {
        let feature = *weighted(&mut rng, FEATURES);
        let metadata = match rng.random_range(0..10) {
            0 => String::new(),
            1 => "{not json".to_string(),
            n => format!(
                "{{\"platform\":\"{}\",\"duration_ms\":{}}}",
                if n % 2 == 0 { "web" } else { "app" },
                rng.random_range(50..5000)
            ),
        };
        out.row(&[
            format!("u{id:09}"),
            (skewed(&mut rng, n_customers, 2.0) + 1).to_string(),
            feature.to_string(),
            ts(instant_between(&mut rng, end - Duration::days(60), end)),
            metadata,
        ])?;
    }
    written.push(out.finish()?);
    Ok(written)
}

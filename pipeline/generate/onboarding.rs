//! Fintech onboarding sources: `lk_onboarding`, `dim_users`, and
//! `bt_users_transactions/` as one CSV per day, the way daily drops arrive.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{Datelike, Duration, NaiveDate, NaiveTime};
use rand::Rng;

use super::{CsvOut, GenerateOptions, day, ts, weighted};
use crate::error::Result;

const RUBROS: &[(&str, f64)] = &[
    ("retail", 30.0),
    ("food", 20.0),
    ("services", 20.0),
    ("transport", 10.0),
    ("health", 10.0),
    ("", 10.0),
];

/// One generated transaction: user_id, day, seconds into the day, type, segment.
type Transaction = (u64, NaiveDate, u32, u8, String);

pub(super) fn generate(o: &GenerateOptions) -> Result<Vec<(PathBuf, usize)>> {
    let n_users = o.count(200_000.0, 40);
    let target_tx = o.count(5_000_000.0, 400);
    let mut rng = o.rng("onboarding");
    let mut onboarding = CsvOut::create(
        o,
        "lk_onboarding.csv",
        &[
            "user_id",
            "first_login_dt",
            "week_year",
            "return",
            "return_dt",
            "activacion_dt",
            "setup_dt",
            "habito",
            "habito_dt",
        ],
    )?;
    let mut users = CsvOut::create(o, "dim_users.csv", &["user_id", "segment", "rubro"])?;
    // Transactions grouped by day so each daily file is written once.
    let mut by_day: BTreeMap<NaiveDate, Vec<Transaction>> = BTreeMap::new();
    let tx_per_user = target_tx as f64 / n_users as f64;
    for id in 1..=n_users as u64 {
        let first = o.end_date - Duration::days(rng.random_range(0..180));
        let iso = first.iso_week();
        let returned = rng.random_bool(0.7);
        let activated = rng.random_bool(if returned { 0.8 } else { 0.15 });
        let setup = activated && rng.random_bool(0.66);
        let later = |rng: &mut rand_chacha::ChaCha8Rng, max: i64| {
            first + Duration::days(rng.random_range(0..=max))
        };
        let ret = match rng.random_range(0..100) {
            0..=1 => String::new(),
            _ if returned => "1".into(),
            _ => "0".into(),
        };
        onboarding.row(&[
            id.to_string(),
            day(first),
            format!("{}-W{:02}", iso.year(), iso.week()),
            ret,
            if returned {
                day(later(&mut rng, 7))
            } else {
                String::new()
            },
            if activated {
                day(later(&mut rng, 14))
            } else {
                String::new()
            },
            if setup {
                day(later(&mut rng, 20))
            } else {
                String::new()
            },
            String::new(),
            String::new(),
        ])?;
        // 70 % individuals, 25 % sellers, 5 % without a usable segment.
        let segment = *weighted(
            &mut rng,
            &[("1", 70.0), ("2", 25.0), ("", 2.0), ("3", 2.0), ("x", 1.0)],
        );
        users.row(&[
            id.to_string(),
            segment.to_string(),
            weighted(&mut rng, RUBROS).to_string(),
        ])?;
        if !activated {
            continue;
        }
        // Heavy users transact on many days: a minority reaches the habit threshold.
        let heavy = rng.random_bool(0.3);
        let count = if heavy {
            (tx_per_user * 3.5) as usize
        } else {
            tx_per_user as usize
        };
        let span = if heavy { 45 } else { 120 };
        for _ in 0..count.max(1) {
            let when = first + Duration::days(rng.random_range(0..span));
            if when > o.end_date {
                continue;
            }
            let kind = if segment == "2" {
                *weighted(
                    &mut rng,
                    &[(8u8, 35.0), (9, 15.0), (1, 20.0), (3, 20.0), (5, 10.0)],
                )
            } else {
                *weighted(
                    &mut rng,
                    &[(1u8, 40.0), (2, 20.0), (3, 20.0), (4, 10.0), (6, 10.0)],
                )
            };
            // The transaction's own segment usually agrees with dim_users, not always.
            let tx_segment = match segment {
                _ if rng.random_bool(0.03) => "1".to_string(),
                "1" | "2" => segment.to_string(),
                _ => String::new(),
            };
            let secs = rng.random_range(0..86_400);
            by_day
                .entry(when)
                .or_default()
                .push((id, when, secs, kind, tx_segment));
        }
    }
    let mut written = vec![onboarding.finish()?, users.finish()?];
    for (date, rows) in by_day {
        let mut out = CsvOut::create(
            o,
            &format!("bt_users_transactions/{}.csv", day(date)),
            &["user_id", "transaction_dt", "type", "segment"],
        )?;
        for (user, when, secs, kind, segment) in rows {
            let at = when.and_time(NaiveTime::MIN) + Duration::seconds(i64::from(secs));
            out.row(&[user.to_string(), ts(at), kind.to_string(), segment])?;
        }
        written.push(out.finish()?);
    }
    Ok(written)
}

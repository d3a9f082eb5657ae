//! The dates of an incremental model: the span of one partition (`period`),
//! which input days a partition reads and, the other way round, which
//! partitions read a changed input day (`lookback_days`, `lookahead_days`).

use serde::Deserialize;

use super::sidecar::Incremental;

/// The span of one partition of an incremental model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    #[default]
    Day,
    Month,
}

impl Period {
    /// The days of the partition that starts on `start`: a partition of a
    /// monthly table dated the 1st holds the whole month.
    pub fn days(self, start: i32) -> std::ops::RangeInclusive<i32> {
        match self {
            Period::Day => start..=start,
            Period::Month => {
                let date = epoch_date(start);
                let next = date
                    .checked_add_months(chrono::Months::new(1))
                    .unwrap_or(date);
                start..=start + (next - date).num_days() as i32 - 1
            }
        }
    }
}

impl Incremental {
    /// The partition date (days since the epoch) holding day `day`.
    pub fn period_start(&self, day: i32) -> i32 {
        match self.period {
            Period::Day => day,
            Period::Month => {
                let date = epoch_date(day);
                chrono::Datelike::with_day(&date, 1)
                    .map_or(day, |first| day - (date - first).num_days() as i32)
            }
        }
    }

    /// The last day of the partition that starts on `start`.
    fn period_end(&self, start: i32) -> i32 {
        *self.period.days(start).end()
    }

    /// The input days a partition dated `date` reads.
    pub fn input_days(&self, date: i32) -> std::ops::RangeInclusive<i32> {
        (date - self.lookback_days as i32)..=(self.period_end(date) + self.lookahead as i32)
    }

    /// The partitions that read input day `day` (the inverse of `input_days`):
    /// those of the days `day - lookahead ..= day + lookback`.
    pub fn partitions_reading(&self, day: i32) -> std::collections::BTreeSet<i32> {
        ((day - self.lookahead as i32)..=(day + self.lookback_days as i32))
            .map(|d| self.period_start(d))
            .collect()
    }
}

/// The date `days` after 1970-01-01.
fn epoch_date(days: i32) -> chrono::NaiveDate {
    chrono::DateTime::UNIX_EPOCH.date_naive() + chrono::TimeDelta::days(days as i64)
}

/// A number of days as a sidecar writes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Days {
    /// `lookahead_days = 29`
    Count(u32),
    /// `lookahead_days = "habit_window_days"`: that variable's value.
    Variable(String),
}

impl Days {
    /// The number of days, reading a variable from `variables` (numeric ones by name).
    pub fn resolve(&self, variables: &std::collections::BTreeMap<String, f64>) -> Option<u32> {
        match self {
            Days::Count(n) => Some(*n),
            Days::Variable(name) => variables
                .get(name)
                .filter(|v| v.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(*v))
                .map(|v| *v as u32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Days since the epoch of `YYYY-MM-DD`.
    fn day(text: &str) -> i32 {
        (chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
            - chrono::DateTime::UNIX_EPOCH.date_naive())
        .num_days() as i32
    }

    fn incremental(text: &str) -> Incremental {
        #[derive(Deserialize)]
        struct Sidecar {
            incremental: Incremental,
        }
        toml::from_str::<Sidecar>(text).unwrap().incremental
    }

    #[test]
    fn partitions_read_the_days_that_read_them() {
        // A month with 31 days of lookback: its own days and the month before.
        let monthly =
            incremental("incremental = { by = 'month', period = 'month', lookback_days = 31 }");
        assert_eq!(monthly.period_start(day("2024-02-29")), day("2024-02-01"));
        assert_eq!(
            monthly.input_days(day("2024-03-01")),
            day("2024-01-30")..=day("2024-03-31")
        );
        assert_eq!(
            monthly.partitions_reading(day("2024-01-31")),
            [day("2024-01-01"), day("2024-02-01"), day("2024-03-01")].into()
        );
        // Days reading forward: the row of day d reads d ..= d + 2.
        let mut ahead = incremental("incremental = { by = 'd', lookahead_days = 'window' }");
        assert_eq!(ahead.lookahead_days, Some(Days::Variable("window".into())));
        ahead.lookahead = Days::Variable("window".into())
            .resolve(&[("window".to_string(), 2.0)].into())
            .unwrap();
        assert_eq!(
            ahead.input_days(day("2024-03-01")),
            day("2024-03-01")..=day("2024-03-03")
        );
        assert_eq!(
            ahead.partitions_reading(day("2024-03-01")),
            [day("2024-02-28"), day("2024-02-29"), day("2024-03-01")].into()
        );
        // The partitions reading a day are exactly those whose input days hold it.
        for spec in [&monthly, &ahead] {
            for d in day("2023-12-01")..day("2024-04-01") {
                let reading = spec.partitions_reading(d);
                for p in day("2023-10-01")..day("2024-06-01") {
                    let p = spec.period_start(p);
                    assert_eq!(reading.contains(&p), spec.input_days(p).contains(&d));
                }
            }
        }
        assert_eq!(
            Days::Variable("window".into()).resolve(&[("window".to_string(), 2.5)].into()),
            None
        );
    }
}

//! `medallion generate`: deterministic synthetic datasets for every CSV source
//! of docs/models.md §1.2, with realistic skew (a few customers and products carry much
//! of the revenue), spread statuses and dates, duplicates, and — with
//! `--dirty-rate` — malformed rows of every kind to exercise quarantine.
//! Amplitude funnel envelopes come with them (`amplitude.rs`).
//!
//! Each source has its own generator seeded from `(seed, source)`, so the
//! same seed and scale give byte-identical files.

mod amplitude;
mod daily;
mod ecommerce;
mod names;
mod onboarding;

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use chrono::{Duration, NaiveDate, NaiveDateTime};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// 1.0 ≈ 100k customers, 1M orders, 2.5M items, 5M events, 200k onboarded users, 5M transactions.
    pub scale: f64,
    pub seed: u64,
    pub out: PathBuf,
    /// Share of rows written malformed on purpose.
    pub dirty_rate: f64,
    /// Last day with activity.
    pub end_date: NaiveDate,
    /// Write the fact sources as folders of one file per day (`daily.rs`).
    pub daily: bool,
}

impl GenerateOptions {
    /// `base × scale`, at least `min`.
    fn count(&self, base: f64, min: usize) -> usize {
        ((base * self.scale).round() as usize).max(min)
    }

    fn rng(&self, stream: &str) -> ChaCha8Rng {
        // FNV-1a of the stream name mixed with the seed: independent, stable streams.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in stream.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        ChaCha8Rng::seed_from_u64(self.seed ^ h)
    }
}

/// Generate every source; returns each file written with its row count.
pub fn generate(opts: &GenerateOptions) -> Result<Vec<(PathBuf, usize)>> {
    if !(opts.scale > 0.0 && opts.scale <= 100.0) {
        return Err(Error::Config(format!(
            "--scale must be within (0, 100], got {}",
            opts.scale
        )));
    }
    if !(0.0..=0.5).contains(&opts.dirty_rate) {
        return Err(Error::Config(format!(
            "--dirty-rate must be within 0..=0.5, got {}",
            opts.dirty_rate
        )));
    }
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| Error::io("cannot create output folder", &opts.out, e))?;
    let mut written = ecommerce::generate(opts)?;
    written.extend(onboarding::generate(opts)?);
    written.extend(amplitude::generate(opts)?);
    if opts.daily {
        written = daily::split(&opts.out, opts.end_date, written)?;
    }
    Ok(written)
}

/// A CSV file being written, with optional malformed rows.
pub(crate) struct CsvOut {
    path: PathBuf,
    writer: csv::Writer<BufWriter<File>>,
    width: usize,
    rows: usize,
    dirty_rate: f64,
    dirt: ChaCha8Rng,
}

impl CsvOut {
    pub(crate) fn create(opts: &GenerateOptions, relative: &str, header: &[&str]) -> Result<Self> {
        let path = opts.out.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io("cannot create folder", parent, e))?;
        }
        let file = File::create(&path).map_err(|e| Error::io("cannot create file", &path, e))?;
        let mut writer = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(BufWriter::with_capacity(1 << 20, file));
        writer
            .write_record(header)
            .map_err(|e| csv_error(&path, e))?;
        Ok(CsvOut {
            dirt: opts.rng(&format!("dirt:{relative}")),
            path,
            writer,
            width: header.len(),
            rows: 0,
            dirty_rate: opts.dirty_rate,
        })
    }

    /// Write one row; with probability `dirty_rate` it is mangled first.
    pub(crate) fn row(&mut self, fields: &[String]) -> Result<()> {
        debug_assert_eq!(fields.len(), self.width);
        self.rows += 1;
        if self.dirty_rate > 0.0 && self.dirt.random_bool(self.dirty_rate) {
            let mangled = mangle(&mut self.dirt, fields);
            return self
                .writer
                .write_record(&mangled)
                .map_err(|e| csv_error(&self.path, e));
        }
        self.writer
            .write_record(fields)
            .map_err(|e| csv_error(&self.path, e))
    }

    pub(crate) fn finish(mut self) -> Result<(PathBuf, usize)> {
        self.writer
            .flush()
            .map_err(|e| Error::io("cannot write file", &self.path, e))?;
        Ok((self.path, self.rows))
    }
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    Error::io(
        "cannot write CSV",
        path,
        std::io::Error::other(e.to_string()),
    )
}

/// One of the malformations quarantine must catch.
fn mangle(rng: &mut ChaCha8Rng, fields: &[String]) -> Vec<String> {
    let mut out = fields.to_vec();
    let i = rng.random_range(0..out.len());
    match rng.random_range(0..5) {
        // Wrong field count.
        0 => {
            out.pop();
        }
        // A value that parses as no type of ours... except free text, which is fine.
        1 => out[i] = "n/a?".into(),
        // An empty primary key (the first column of every source but transactions).
        2 => out[0] = String::new(),
        // A negative number: out of range for quantities, prices, ratings, types.
        3 => out[i] = "-7".into(),
        // A date in the wrong format.
        _ => out[i] = "31/12/2025".into(),
    }
    out
}

/// Uniform instant in `[start, end)`.
pub(crate) fn instant_between(
    rng: &mut impl Rng,
    start: NaiveDateTime,
    end: NaiveDateTime,
) -> NaiveDateTime {
    let span = (end - start).num_seconds().max(1);
    start + Duration::seconds(rng.random_range(0..span))
}

/// An index in `0..n` skewed towards 0: `n · u^k`; k = 3 puts about half the
/// picks on the first ~12 % of items.
pub(crate) fn skewed(rng: &mut impl Rng, n: usize, k: f64) -> usize {
    let u: f64 = rng.random();
    ((u.powf(k) * n as f64) as usize).min(n.saturating_sub(1))
}

pub(crate) fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

pub(crate) fn ts(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

pub(crate) fn ts_iso(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub(crate) fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

pub(crate) fn pick<'a, T>(rng: &mut impl Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// Pick by weights (need not sum to 1).
pub(crate) fn weighted<'a, T>(rng: &mut impl Rng, items: &'a [(T, f64)]) -> &'a T {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.random::<f64>() * total;
    for (item, w) in items {
        if x < *w {
            return item;
        }
        x -= w;
    }
    &items[items.len() - 1].0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(out: &Path) -> GenerateOptions {
        GenerateOptions {
            scale: 0.001,
            seed: 7,
            out: out.to_path_buf(),
            dirty_rate: 0.0,
            end_date: NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(),
            daily: false,
        }
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let c = tempfile::tempdir().unwrap();
        let files_a = generate(&opts(a.path())).unwrap();
        generate(&opts(b.path())).unwrap();
        generate(&GenerateOptions {
            seed: 8,
            ..opts(c.path())
        })
        .unwrap();
        assert!(files_a.len() >= 11);
        let read = |root: &Path, rel: &str| std::fs::read(root.join(rel)).unwrap();
        for rel in [
            "orders.csv",
            "customers.csv",
            "events.csv",
            "lk_onboarding.csv",
        ] {
            assert_eq!(read(a.path(), rel), read(b.path(), rel), "{rel}");
            assert_ne!(read(a.path(), rel), read(c.path(), rel), "{rel}");
        }
    }
}

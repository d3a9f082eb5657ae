//! `generate --daily`: the fact sources as folders of one file per day, the
//! way nightly exports arrive (`orders/2026-10-31.csv`), so that nightly
//! runs can be reproduced and benchmarked. Orders, events and usage logs go
//! by their own timestamp; order items by their order's day. A row whose
//! timestamp does not parse (a dirty row) goes with the row before it.
//! Daily user transactions are written per day already.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use csv::{ByteRecord, ReaderBuilder, Writer, WriterBuilder};

use super::csv_error;
use crate::error::{Error, Result};

/// Files open at once while splitting: days are written in passes of this many.
const DAYS_PER_PASS: usize = 200;

/// Split the single-file fact sources under `out` into daily folders (a
/// dirty row before any dated one goes to `fallback_day`); returns `written` with the single files replaced by the daily ones.
pub fn split(
    out: &Path,
    fallback_day: NaiveDate,
    written: Vec<(PathBuf, usize)>,
) -> Result<Vec<(PathBuf, usize)>> {
    let fallback = fallback_day.format("%Y-%m-%d").to_string();
    let mut days_of_orders: HashMap<Vec<u8>, String> = HashMap::new();
    let mut daily = Vec::new();
    // Orders first: their days place the order items.
    for (source, column) in [
        ("orders", "order_date"),
        ("order_items", "order_id"),
        ("events", "occurred_at"),
        ("usage_logs", "occurred_at"),
    ] {
        let path = out.join(format!("{source}.csv"));
        let orders = (source == "order_items").then_some(&days_of_orders);
        let rows = day_of_each_row(&path, column, orders, &fallback)?;
        if source == "orders" {
            let ids = column_values(&path, "order_id")?;
            days_of_orders = ids.into_iter().zip(rows.iter().cloned()).collect();
        }
        daily.extend(write_days(&path, &out.join(source), &rows)?);
        std::fs::remove_file(&path).map_err(|e| Error::io("cannot remove", &path, e))?;
    }
    let split_away: Vec<PathBuf> = ["orders", "order_items", "events", "usage_logs"]
        .iter()
        .map(|s| out.join(format!("{s}.csv")))
        .collect();
    let mut result: Vec<(PathBuf, usize)> = written
        .into_iter()
        .filter(|(p, _)| !split_away.contains(p))
        .collect();
    result.extend(daily);
    Ok(result)
}

fn reader(path: &Path) -> Result<csv::Reader<File>> {
    ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_path(path)
        .map_err(|e| csv_error(path, e))
}

fn position(reader: &mut csv::Reader<File>, path: &Path, column: &str) -> Result<usize> {
    let headers = reader.byte_headers().map_err(|e| csv_error(path, e))?;
    headers
        .iter()
        .position(|h| h == column.as_bytes())
        .ok_or_else(|| Error::Input(format!("{}: no column `{column}`", path.display())))
}

/// The values of one column, row by row.
fn column_values(path: &Path, column: &str) -> Result<Vec<Vec<u8>>> {
    let mut reader = reader(path)?;
    let at = position(&mut reader, path, column)?;
    let mut record = ByteRecord::new();
    let mut values = Vec::new();
    while reader
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(path, e))?
    {
        values.push(record.get(at).unwrap_or_default().to_vec());
    }
    Ok(values)
}

/// The day each row goes to: the date `column` starts with, or with
/// `orders`, the day of the order `column` names.
fn day_of_each_row(
    path: &Path,
    column: &str,
    orders: Option<&HashMap<Vec<u8>, String>>,
    fallback: &str,
) -> Result<Vec<String>> {
    let mut last = fallback.to_string();
    let mut days = Vec::new();
    for value in column_values(path, column)? {
        let day = match orders {
            Some(orders) => orders.get(&value).cloned(),
            None => std::str::from_utf8(&value)
                .ok()
                .and_then(|v| v.get(..10))
                .filter(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok())
                .map(str::to_string),
        };
        if let Some(day) = day {
            last = day;
        }
        days.push(last.clone());
    }
    Ok(days)
}

/// Write each row of `path` to `<dir>/<its day>.csv`, with the header.
fn write_days(path: &Path, dir: &Path, days: &[String]) -> Result<Vec<(PathBuf, usize)>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create folder", dir, e))?;
    let all: Vec<&String> = days.iter().collect::<BTreeSet<_>>().into_iter().collect();
    let mut written = Vec::new();
    for pass in all.chunks(DAYS_PER_PASS) {
        let mut writers: HashMap<&str, (PathBuf, Writer<BufWriter<File>>, usize)> = HashMap::new();
        let mut reader = reader(path)?;
        let header = reader
            .byte_headers()
            .map_err(|e| csv_error(path, e))?
            .clone();
        for day in pass {
            let file = dir.join(format!("{day}.csv"));
            let handle =
                File::create(&file).map_err(|e| Error::io("cannot create file", &file, e))?;
            let mut writer = WriterBuilder::new()
                .flexible(true)
                .from_writer(BufWriter::with_capacity(1 << 16, handle));
            writer
                .write_byte_record(&header)
                .map_err(|e| csv_error(&file, e))?;
            writers.insert(day.as_str(), (file, writer, 0));
        }
        let mut record = ByteRecord::new();
        let mut row = 0;
        while reader
            .read_byte_record(&mut record)
            .map_err(|e| csv_error(path, e))?
        {
            if let Some((file, writer, rows)) = writers.get_mut(days[row].as_str()) {
                writer
                    .write_byte_record(&record)
                    .map_err(|e| csv_error(file, e))?;
                *rows += 1;
            }
            row += 1;
        }
        for (_, (file, mut writer, rows)) in writers {
            writer
                .flush()
                .map_err(|e| Error::io("cannot write file", &file, e))?;
            written.push((file, rows));
        }
    }
    written.sort();
    Ok(written)
}

//! Amplitude funnel envelopes (docs/models.md §1.3) into the bronze tables
//! `bronze_amplitude_funnel_daily` (one row per funnel × day × step) and
//! `bronze_amplitude_funnel_cumulative` (one row per funnel × step, from
//! `cumulativeRaw`: distinct users over the whole range).
//!
//! Real responses carry ~40 keys we do not use: only the fields read here are
//! declared, every other key is ignored. An envelope that lacks the required
//! shape, or whose arrays disagree in length, is quarantined whole with a
//! reason, and the run goes on.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::parquet::arrow::ArrowWriter;

use super::envelope::{ParsedEnvelope, parse_envelope};
use super::files::IngestOptions;
use super::sources::{lineage_fields, quarantine_schema, utc_micros};
use crate::error::{Error, Result};

/// Where envelopes live under the input folder.
pub const FUNNELS_DIR: &str = "amplitude/funnels";
/// Quarantine folder name of malformed envelopes.
pub const QUARANTINE_SOURCE: &str = "amplitude_funnels";

/// Which of the two bronze tables to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunnelTable {
    Daily,
    Cumulative,
}

impl FunnelTable {
    pub const ALL: [FunnelTable; 2] = [FunnelTable::Daily, FunnelTable::Cumulative];

    pub fn table_name(self) -> &'static str {
        match self {
            FunnelTable::Daily => "bronze_amplitude_funnel_daily",
            FunnelTable::Cumulative => "bronze_amplitude_funnel_cumulative",
        }
    }

    /// The columns naming one row; of several rows with one key the latest
    /// `fetched_at` wins (an envelope fetched again replaces the older one).
    pub fn key(self) -> &'static [&'static str] {
        match self {
            FunnelTable::Daily => &[
                "experiment_id",
                "variant",
                "device",
                "culture",
                "group_value",
                "date",
                "step",
            ],
            FunnelTable::Cumulative => &[
                "experiment_id",
                "variant",
                "device",
                "culture",
                "group_value",
                "start_date",
                "end_date",
                "step",
            ],
        }
    }

    pub fn schema(self) -> SchemaRef {
        let mut fields = vec![
            Field::new("experiment_id", DataType::Utf8, false),
            Field::new("variant", DataType::Utf8, false),
            Field::new("device", DataType::Utf8, false),
            Field::new("culture", DataType::Utf8, false),
            Field::new("group_value", DataType::Utf8, false),
            Field::new("start_date", DataType::Date32, false),
            Field::new("end_date", DataType::Date32, false),
        ];
        if self == FunnelTable::Daily {
            fields.push(Field::new("date", DataType::Date32, false));
        }
        fields.extend([
            Field::new("step", DataType::Int64, false),
            Field::new("stage", DataType::Utf8, false),
            Field::new("users", DataType::Int64, false),
            Field::new("fetched_at", utc_micros(), true),
            Field::new("pruned_result", DataType::Boolean, true),
            Field::new("hit_chunk_group_by_limit", DataType::Boolean, true),
            Field::new("min_sample_rate", DataType::Float64, true),
        ]);
        fields.extend(lineage_fields());
        Arc::new(Schema::new(fields))
    }
}

/// Every `*.json` under `<input>/amplitude/funnels/`, by name.
pub fn discover(input: &Path) -> Result<Vec<(PathBuf, String)>> {
    let dir = input.join(FUNNELS_DIR);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| Error::io("cannot list envelopes", &dir, e))? {
        let entry = entry.map_err(|e| Error::io("cannot list envelopes", &dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_file() && name.ends_with(".json") && !name.starts_with('.') {
            files.push((entry.path(), format!("{FUNNELS_DIR}/{name}")));
        }
    }
    files.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(files)
}

/// What an envelope ingestion produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvelopeReport {
    pub files: usize,
    pub rows: u64,
    pub quarantined: u64,
    pub partial: u64,
}

/// Land every envelope into `table` under `out_dir`; malformed envelopes go
/// to `quarantine_dir` when given (only one of the two tables writes them).
pub fn ingest_envelopes(
    table: FunnelTable,
    files: &[(PathBuf, String)],
    out_dir: &Path,
    quarantine_dir: Option<&Path>,
    opts: &IngestOptions,
) -> Result<EnvelopeReport> {
    let schema = table.schema();
    let mut report = EnvelopeReport::default();
    let mut batches: Vec<RecordBatch> = Vec::new();
    let mut bad: Vec<(String, String, String)> = Vec::new();
    for (path, name) in files {
        report.files += 1;
        let bytes = std::fs::read(path).map_err(|e| Error::io("cannot read envelope", path, e))?;
        match parse_envelope(&bytes) {
            Ok(env) => {
                if env.is_partial() && table == FunnelTable::Daily {
                    report.partial += 1;
                    tracing::warn!(
                        file = %name,
                        pruned_result = ?env.pruned_result,
                        hit_chunk_group_by_limit = ?env.hit_chunk_group_by_limit,
                        min_sample_rate = ?env.min_sample_rate,
                        "Amplitude says this funnel result is partial or sampled."
                    );
                }
                let batch = rows_of(table, &env, name, &schema, opts)?;
                report.rows += batch.num_rows() as u64;
                batches.push(batch);
            }
            Err(reason) => {
                report.quarantined += 1;
                if table == FunnelTable::Daily {
                    tracing::warn!(file = %name, reason = %reason, "Envelope quarantined.");
                }
                let raw = String::from_utf8_lossy(&bytes[..bytes.len().min(2000)]).into_owned();
                bad.push((reason, raw, name.clone()));
            }
        }
    }
    write_single(out_dir, &schema, &batches, opts)?;
    if let Some(qdir) = quarantine_dir {
        let q = quarantine_schema();
        let n = bad.len();
        let mut reason = StringBuilder::new();
        let mut raw = StringBuilder::new();
        let mut file = StringBuilder::new();
        for (r, w, f) in &bad {
            reason.append_value(r);
            raw.append_value(w);
            file.append_value(f);
        }
        let batch = RecordBatch::try_new(
            q.clone(),
            vec![
                Arc::new(reason.finish()),
                Arc::new(raw.finish()),
                Arc::new(file.finish()),
                constant_i64(n, 0),
                constant_ts(n, opts.ingested_at),
                constant_str(n, &opts.run_id),
            ],
        )?;
        write_single(qdir, &q, &[batch], opts)?;
    }
    Ok(report)
}

fn constant_i64(n: usize, v: i64) -> ArrayRef {
    Arc::new(datafusion::arrow::array::Int64Array::from(vec![v; n]))
}

fn constant_ts(n: usize, v: i64) -> ArrayRef {
    let mut b = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    for _ in 0..n {
        b.append_value(v);
    }
    Arc::new(b.finish())
}

fn constant_str(n: usize, v: &str) -> ArrayRef {
    Arc::new(datafusion::arrow::array::StringArray::from(vec![v; n]))
}

fn rows_of(
    table: FunnelTable,
    env: &ParsedEnvelope,
    file: &str,
    schema: &SchemaRef,
    opts: &IngestOptions,
) -> Result<RecordBatch> {
    let mut exp = StringBuilder::new();
    let mut variant = StringBuilder::new();
    let mut device = StringBuilder::new();
    let mut culture = StringBuilder::new();
    let mut group = StringBuilder::new();
    let mut start = Date32Builder::new();
    let mut end = Date32Builder::new();
    let mut date = Date32Builder::new();
    let mut step = Int64Builder::new();
    let mut stage = StringBuilder::new();
    let mut users = Int64Builder::new();
    let mut fetched = TimestampMicrosecondBuilder::new().with_timezone("UTC");
    let mut pruned = BooleanBuilder::new();
    let mut hit = BooleanBuilder::new();
    let mut rate = Float64Builder::new();
    let mut source_file = StringBuilder::new();
    let mut source_line = Int64Builder::new();
    let mut n = 0usize;
    for (fi, funnel) in env.funnels.iter().enumerate() {
        let mut push = |day: Option<i32>, s: usize, u: i64| {
            exp.append_value(&env.experiment_id);
            variant.append_value(&env.variant);
            device.append_value(&env.device);
            culture.append_value(&env.culture);
            group.append_value(&funnel.group_value);
            start.append_value(env.start);
            end.append_value(env.end);
            if let Some(d) = day {
                date.append_value(d);
            }
            step.append_value(s as i64 + 1);
            stage.append_value(&funnel.steps[s]);
            users.append_value(u);
            fetched.append_option(env.fetched_at);
            pruned.append_option(env.pruned_result);
            hit.append_option(env.hit_chunk_group_by_limit);
            rate.append_option(env.min_sample_rate);
            source_file.append_value(file);
            // Position of the funnel in response.data, 1-based: JSON has no lines to cite.
            source_line.append_value(fi as i64 + 1);
            n += 1;
        };
        match table {
            FunnelTable::Daily => {
                for (day, counts) in &funnel.days {
                    for (s, u) in counts.iter().enumerate() {
                        push(Some(*day), s, *u);
                    }
                }
            }
            FunnelTable::Cumulative => {
                for (s, u) in funnel.cumulative.iter().enumerate() {
                    push(None, s, *u);
                }
            }
        }
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(exp.finish()),
        Arc::new(variant.finish()),
        Arc::new(device.finish()),
        Arc::new(culture.finish()),
        Arc::new(group.finish()),
        Arc::new(start.finish()),
        Arc::new(end.finish()),
    ];
    if table == FunnelTable::Daily {
        columns.push(Arc::new(date.finish()));
    }
    columns.extend::<[ArrayRef; 8]>([
        Arc::new(step.finish()),
        Arc::new(stage.finish()),
        Arc::new(users.finish()),
        Arc::new(fetched.finish()),
        Arc::new(pruned.finish()),
        Arc::new(hit.finish()),
        Arc::new(rate.finish()),
        Arc::new(source_file.finish()),
    ]);
    columns.extend([
        Arc::new(source_line.finish()) as ArrayRef,
        constant_ts(n, opts.ingested_at),
        constant_str(n, &opts.run_id),
    ]);
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

fn write_single(
    dir: &Path,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    opts: &IngestOptions,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create staging folder", dir, e))?;
    let path = dir.join("part-00000.parquet");
    let file = std::fs::File::create(&path)
        .map_err(|e| Error::io("cannot create staging file", &path, e))?;
    let mut writer = ArrowWriter::try_new(
        file,
        schema.clone(),
        Some(crate::parquet::properties_for(
            &opts.writer_properties,
            schema,
        )),
    )?;
    for b in batches {
        writer.write(b)?;
    }
    writer.close()?;
    Ok(())
}

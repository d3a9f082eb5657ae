//! NDJSON and Parquet sources: each row is laid out as the declared columns
//! in order (as text) and goes through the same parsing, checks and
//! quarantine as a CSV record, so the three formats land alike.
//!
//! NDJSON: one JSON object per line; a key's value is its text (strings as
//! they are, numbers and booleans as written, nested values as JSON), a
//! missing key or `null` is empty. Parquet: DataFusion's reader, each
//! declared column cast to text by arrow's cast kernel one batch at a time;
//! the row number in the file stands for the line.

use std::fs::File;
use std::io::{BufRead, BufReader};

use csv::ByteRecord;
use datafusion::arrow::array::{Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::IngestState;
use crate::error::{Error, Result};
use crate::ingest::columns::TableSink;
use crate::ingest::files::InputFile;

impl IngestState<'_> {
    pub(super) fn read_ndjson(
        &mut self,
        file: &InputFile,
        bronze: &mut TableSink,
        quarantine: &mut TableSink,
    ) -> Result<()> {
        let handle = File::open(&file.path)
            .map_err(|e| Error::io("cannot open input file", &file.path, e))?;
        let reader = BufReader::with_capacity(1 << 20, handle);
        let mut record = ByteRecord::new();
        for (i, line) in reader.split(b'\n').enumerate() {
            let line = line.map_err(|e| Error::io("cannot read input file", &file.path, e))?;
            let number = i as u64 + 1;
            let text = String::from_utf8_lossy(&line);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            record.clear();
            let object = match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Object(object)) => object,
                Ok(_) => {
                    self.quarantine_raw("not a JSON object", text, &file.name, number);
                    continue;
                }
                Err(e) => {
                    self.quarantine_raw(&format!("not valid JSON: {e}"), text, &file.name, number);
                    continue;
                }
            };
            if self.source.fail_on_unknown_columns
                && let Some(extra) = object.keys().find(|k| {
                    !self
                        .source
                        .columns
                        .iter()
                        .any(|c| c.name.eq_ignore_ascii_case(k))
                })
            {
                return Err(self.undeclared(&format!("{} line {number}", file.name), extra));
            }
            for column in &self.source.columns {
                let value = object.get(&column.name).or_else(|| {
                    object
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(&column.name))
                        .map(|(_, v)| v)
                });
                match value {
                    None | Some(serde_json::Value::Null) => record.push_field(b""),
                    Some(serde_json::Value::String(s)) => record.push_field(s.as_bytes()),
                    Some(other) => record.push_field(other.to_string().as_bytes()),
                }
            }
            self.take_row(&record, text, &file.name, number, bronze, quarantine)?;
        }
        Ok(())
    }

    pub(super) fn read_parquet(
        &mut self,
        file: &InputFile,
        bronze: &mut TableSink,
        quarantine: &mut TableSink,
    ) -> Result<()> {
        let handle = File::open(&file.path)
            .map_err(|e| Error::io("cannot open input file", &file.path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(handle).map_err(|e| {
            self.source_error(format!("{} is not a readable Parquet file: {e}", file.name))
        })?;
        let schema = builder.schema().clone();
        let names: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| f.name().to_ascii_lowercase())
            .collect();
        let positions = self.map_names(file, &names)?;
        let reader = builder
            .with_batch_size(self.opts.batch_rows.max(1))
            .build()
            .map_err(|e| self.source_error(format!("{}: {e}", file.name)))?;
        let mut row_number = 0u64;
        let mut record = ByteRecord::new();
        for batch in reader {
            let batch = batch.map_err(|e| {
                self.source_error(format!(
                    "{}: unreadable after row {row_number}: {e}",
                    file.name
                ))
            })?;
            // Each declared column as text, one cast per batch.
            let texts: Vec<Option<StringArray>> = positions
                .iter()
                .map(|p| {
                    p.map(|i| {
                        cast(batch.column(i), &DataType::Utf8).map(|a| {
                            a.as_any()
                                .downcast_ref::<StringArray>()
                                .cloned()
                                .unwrap_or_else(|| StringArray::from(Vec::<Option<&str>>::new()))
                        })
                    })
                    .transpose()
                })
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| self.source_error(format!("{}: {e}", file.name)))?;
            for row in 0..batch.num_rows() {
                row_number += 1;
                record.clear();
                for text in &texts {
                    match text {
                        Some(a) if a.len() > row && !a.is_null(row) => {
                            record.push_field(a.value(row).as_bytes())
                        }
                        _ => record.push_field(b""),
                    }
                }
                let raw = raw_row(&record);
                self.take_row(&record, &raw, &file.name, row_number, bronze, quarantine)?;
            }
        }
        Ok(())
    }

    /// A row that is not a row at all (a line that is not JSON).
    fn quarantine_raw(&mut self, reason: &str, raw: &str, file: &str, line: u64) {
        self.q_reason.append_value(reason);
        self.q_raw.append_value(raw);
        self.q_lineage.append(file, line);
        self.report.quarantined += 1;
        self.report.quarantined_lines += 1;
    }
}

/// A Parquet row as one CSV line of its declared columns, for the quarantine.
fn raw_row(record: &ByteRecord) -> String {
    let mut writer = csv::WriterBuilder::new().from_writer(Vec::new());
    if writer.write_byte_record(record).is_err() {
        return String::new();
    }
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).trim_end().to_string()
}

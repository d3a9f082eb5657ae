//! Streaming, typed ingestion of a declared source with quarantine
//! (docs/models.md §1.1, §1.5): CSV here, NDJSON and Parquet in `formats`.
//!
//! A source is read file by file, record by record, into Arrow builders of
//! `batch_rows` rows that are flushed to Parquet as they fill: memory stays
//! bounded by one batch whatever the file size. A row that cannot be used is
//! written to the quarantine table with its file, line, raw values and the
//! reason, never dropped silently and never a panic.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use csv::ByteRecord;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringBuilder};

mod formats;
mod header;
mod parallel;
mod record;

use record::{field_text, is_blank, raw_values};

use super::cells::parse_cell;
use super::columns::{Builder, Cell, KeyCounter, Lineage, Sink, TableSink, ensure_a_part};
use super::files::{FileCounts, IngestOptions, IngestReport, InputFile};
use super::sources::{Format, Source, quarantine_schema};
use crate::error::{Error, Result};

/// Whether a file's lines end in `\r` alone: its first block holds a `\r`
/// and no `\n`.
fn ends_lines_with_cr_only(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut head = Vec::with_capacity(1 << 16);
    File::open(path)
        .and_then(|f| f.take(1 << 16).read_to_end(&mut head))
        .map_err(|e| Error::io("cannot read input file", path, e))?;
    Ok(head.contains(&b'\r') && !head.contains(&b'\n'))
}

/// A reader that turns every `\r` into `\n`.
struct CrAsLf<R>(R);

impl<R: std::io::Read> std::io::Read for CrAsLf<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        cr_as_lf(&mut buf[..n]);
        Ok(n)
    }
}

/// Turn every `\r` of `bytes` into `\n`.
fn cr_as_lf(bytes: &mut [u8]) {
    for b in bytes {
        if *b == b'\r' {
            *b = b'\n';
        }
    }
}

/// Reads `files` of `source` into `bronze_dir` (typed rows) and
/// `quarantine_dir` (unusable rows), both under staging: each file into its
/// own part, `<part>.parquet` with the name `parts` gives it, so that a
/// later run can keep the parts of files that did not change. A part with
/// no rows is not written; a folder left with none gets an empty one.
pub fn ingest_source(
    source: &Source,
    files: &[InputFile],
    parts: &[String],
    bronze_dir: &Path,
    quarantine_dir: &Path,
    opts: &IngestOptions,
) -> Result<IngestReport> {
    let props = &opts.writer_properties;
    let mut state = IngestState::new(source, opts)?;
    for (file, part) in files.iter().zip(parts) {
        let part = crate::storage::marker::part_name(part);
        let mut bronze = TableSink::create(&bronze_dir.join(&part), source.bronze_schema(), props)?;
        let mut quarantine =
            TableSink::create(&quarantine_dir.join(&part), quarantine_schema(), props)?;
        let before = state.report.clone();
        state.read_file(file, &mut bronze, &mut quarantine)?;
        state.flush(&mut bronze, &mut quarantine)?;
        bronze.close(false)?;
        quarantine.close(false)?;
        state.report.files += 1;
        state.report.per_file.push(FileCounts {
            rows: state.report.rows - before.rows,
            quarantined: state.report.quarantined - before.quarantined,
            quarantined_lines: state.report.quarantined_lines - before.quarantined_lines,
        });
    }
    ensure_a_part(bronze_dir, source.bronze_schema(), props)?;
    ensure_a_part(quarantine_dir, quarantine_schema(), props)?;
    if let Some(keys) = state.keys.take() {
        state.report.duplicate_keys = keys.repeated();
    }
    Ok(state.report)
}

/// The CSV reader of `source`'s dialect, for a whole file or one chunk of
/// it. Records end at `\n` only: with the default CRLF terminator the csv
/// crate reports the line *before* each record of a CRLF file. A `\r` left
/// at the end of the last field is whitespace and trimmed.
fn csv_reader(source: &Source) -> csv::ReaderBuilder {
    let mut builder = csv::ReaderBuilder::new();
    builder
        .has_headers(false)
        .flexible(true)
        .delimiter(source.dialect.delimiter)
        .quote(source.dialect.quote)
        .terminator(csv::Terminator::Any(b'\n'));
    builder
}

struct IngestState<'a> {
    source: &'a Source,
    opts: &'a IngestOptions,
    builders: Vec<Builder>,
    lineage: Lineage,
    q_reason: StringBuilder,
    q_raw: StringBuilder,
    q_lineage: Lineage,
    cells: Vec<Cell>,
    /// The primary key's counter, for a source that has one.
    keys: Option<KeyCounter>,
    report: IngestReport,
}

impl<'a> IngestState<'a> {
    fn new(source: &'a Source, opts: &'a IngestOptions) -> Result<Self> {
        let builders = source
            .columns
            .iter()
            .map(|c| Builder::new(c.ty))
            .collect::<Result<Vec<_>>>()?;
        Ok(IngestState {
            source,
            opts,
            builders,
            lineage: Lineage::default(),
            q_reason: StringBuilder::new(),
            q_raw: StringBuilder::new(),
            q_lineage: Lineage::default(),
            cells: Vec::with_capacity(source.columns.len()),
            keys: KeyCounter::for_columns(
                source
                    .columns
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.primary_key)
                    .map(|(i, _)| i)
                    .collect(),
            ),
            report: IngestReport::default(),
        })
    }

    /// A file column (or key) the declaration lacks, with unknown_columns = "fail".
    fn undeclared(&self, place: &str, extra: &str) -> Error {
        self.source_error(format!(
            "{place}: `{extra}` is not declared and unknown_columns = \"fail\" (declared: {}); \
             declare it in {} or set unknown_columns = \"ignore\"",
            self.column_list(),
            self.source.declared_in.display()
        ))
    }

    fn source_error(&self, message: String) -> Error {
        Error::Source {
            source_name: self.source.name.clone(),
            message,
        }
    }

    fn read_file(
        &mut self,
        file: &InputFile,
        bronze: &mut TableSink,
        quarantine: &mut TableSink,
    ) -> Result<()> {
        match self.source.format {
            Format::Csv => self.read_csv(file, bronze, quarantine),
            Format::Ndjson => self.read_ndjson(file, bronze, quarantine),
            Format::Parquet => self.read_parquet(file, bronze, quarantine),
        }
    }

    /// One row of a non-CSV file, already laid out as the declared columns
    /// in order: parsed, checked, then landed or quarantined (with `raw`,
    /// the row as the file wrote it).
    fn take_row(
        &mut self,
        record: &ByteRecord,
        raw: &str,
        file: &str,
        line: u64,
        bronze: &mut TableSink,
        quarantine: &mut TableSink,
    ) -> Result<()> {
        let text = std::str::from_utf8(record.as_slice()).ok();
        let n = self.source.columns.len();
        let mapping: Vec<Option<usize>> = (0..n).map(Some).collect();
        match self.parse_row(record, text, &mapping, n) {
            Ok(()) => {
                if let Some(keys) = self.keys.as_mut() {
                    keys.add(&self.cells, record);
                }
                self.append_row(record, text);
                self.lineage.append(file, line);
                self.report.rows += 1;
            }
            Err(reason) => {
                self.q_reason.append_value(&reason);
                self.q_raw.append_value(raw);
                self.q_lineage.append(file, line);
                self.report.quarantined += 1;
                self.report.quarantined_lines += 1;
            }
        }
        if self.lineage.rows >= self.opts.batch_rows || self.q_lineage.rows >= self.opts.batch_rows
        {
            self.flush(bronze, quarantine)?;
        }
        Ok(())
    }

    fn read_csv(
        &mut self,
        file: &InputFile,
        bronze: &mut TableSink,
        quarantine: &mut TableSink,
    ) -> Result<()> {
        let handle = File::open(&file.path)
            .map_err(|e| Error::io("cannot open input file", &file.path, e))?;
        // A file whose lines end in `\r` alone (old spreadsheet exports) is
        // read with each `\r` taken as `\n`, so its lines and numbers are right.
        let cr_only = ends_lines_with_cr_only(&file.path)?;
        let input: Box<dyn std::io::Read> = if cr_only {
            Box::new(CrAsLf(handle))
        } else {
            Box::new(handle)
        };
        let mut reader =
            csv_reader(self.source).from_reader(BufReader::with_capacity(1 << 20, input));
        let mut record = ByteRecord::new();
        let (mapping, header_len) = if self.source.dialect.header {
            let header_read = reader.read_byte_record(&mut record).map_err(|e| {
                self.source_error(format!("{}: cannot read the header: {e}", file.name))
            })?;
            if !header_read {
                return Err(self.source_error(format!(
                    "{} is empty: expected a header line naming the columns ({})",
                    file.name,
                    self.column_list()
                )));
            }
            (self.map_header(file, &record)?, record.len())
        } else {
            // No header: the fields are the declared columns, in order.
            let n = self.source.columns.len();
            ((0..n).map(Some).collect(), n)
        };
        let size = std::fs::metadata(&file.path)
            .map_err(|e| Error::io("cannot read input file", &file.path, e))?
            .len();
        // Cut a large file only when the run has a slot idle for a second parser.
        let borrowed = if parallel::worth_it(self.opts, size) {
            self.opts.workload.borrow_idle()
        } else {
            Vec::new()
        };
        if !borrowed.is_empty() {
            let layout = parallel::Layout {
                start: reader.position().byte(),
                first_line: reader.position().line(),
                cr_only,
                mapping: &mapping,
                header_len,
            };
            return self.read_chunks(file, &layout, borrowed, bronze, quarantine);
        }
        self.read_records(
            file,
            &mut reader,
            &mut record,
            &mapping,
            header_len,
            0,
            bronze,
            quarantine,
        )
    }

    /// The records after the header (if any) of one CSV file, or of one
    /// chunk of it whose first line is line `lines_before + 1` of the file.
    #[allow(clippy::too_many_arguments)]
    fn read_records<R: std::io::Read>(
        &mut self,
        file: &InputFile,
        reader: &mut csv::Reader<R>,
        record: &mut ByteRecord,
        mapping: &[Option<usize>],
        header_len: usize,
        lines_before: u64,
        bronze: &mut impl Sink,
        quarantine: &mut impl Sink,
    ) -> Result<()> {
        loop {
            let more = reader.read_byte_record(record).map_err(|e| {
                self.source_error(format!(
                    "{}: unreadable CSV after line {}: {e}",
                    file.name,
                    lines_before + record.position().map_or(0, |p| p.line())
                ))
            })?;
            if !more {
                break;
            }
            let line = lines_before + record.position().map_or(0, |p| p.line());
            // Physical lines this record spans: more than one for a quoted
            // line break, or for a quote that never closed.
            let lines = (lines_before + reader.position().line())
                .saturating_sub(line)
                .max(1);
            if is_blank(record) {
                continue;
            }
            // One UTF-8 check for the whole record instead of one per field;
            // only a record that fails it is checked field by field.
            let text = std::str::from_utf8(record.as_slice()).ok();
            match self.parse_row(record, text, mapping, header_len) {
                Ok(()) => {
                    if let Some(keys) = self.keys.as_mut() {
                        keys.add(&self.cells, record);
                    }
                    self.append_row(record, text);
                    self.lineage.append(&file.name, line);
                    self.report.rows += 1;
                }
                Err(reason) if lines > 1 => {
                    let reason = format!(
                        "{reason} (the record spans lines {line}-{}: a quote that never \
                         closed joins the lines after it)",
                        line + lines - 1
                    );
                    self.quarantine_record(record, &reason, &file.name, line, lines);
                }
                Err(reason) => {
                    self.quarantine_record(record, &reason, &file.name, line, 1);
                }
            }
            if self.lineage.rows >= self.opts.batch_rows
                || self.q_lineage.rows >= self.opts.batch_rows
            {
                self.flush(bronze, quarantine)?;
            }
        }
        Ok(())
    }

    /// Set a record aside in the quarantine with its reason and lines.
    fn quarantine_record(
        &mut self,
        record: &ByteRecord,
        reason: &str,
        file: &str,
        line: u64,
        lines: u64,
    ) {
        self.q_reason.append_value(reason);
        self.q_raw.append_value(raw_values(record));
        self.q_lineage.append(file, line);
        self.report.quarantined += 1;
        self.report.quarantined_lines += lines;
        if lines > 1 && self.report.damaged.as_ref().is_none_or(|d| d.2 < lines) {
            self.report.damaged = Some((file.to_string(), line, lines));
        }
    }

    fn column_list(&self) -> String {
        self.source
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Parse and check every field into `self.cells`; `Err(reason)` quarantines the row.
    fn parse_row(
        &mut self,
        record: &ByteRecord,
        text: Option<&str>,
        mapping: &[Option<usize>],
        header_len: usize,
    ) -> Result<(), String> {
        if record.len() != header_len {
            return Err(format!(
                "expected {header_len} fields as in the header, found {}",
                record.len()
            ));
        }
        self.cells.clear();
        for (column, position) in self.source.columns.iter().zip(mapping) {
            let cell = match position.and_then(|i| record.range(i)) {
                None => Cell::Null,
                Some(range) => {
                    let field = field_text(record, text, range.clone())
                        .ok_or_else(|| format!("column `{}`: not valid UTF-8", column.name))?;
                    parse_cell(column, field, range.start)?
                }
            };
            self.cells.push(cell);
        }
        Ok(())
    }

    fn append_row(&mut self, record: &ByteRecord, text: Option<&str>) {
        for (builder, cell) in self.builders.iter_mut().zip(&self.cells) {
            match (builder, *cell) {
                (Builder::Int(b), Cell::Int(v)) => b.append_value(v),
                (Builder::Float(b), Cell::Float(v)) => b.append_value(v),
                (Builder::Dec(b), Cell::Dec(v)) => b.append_value(v),
                (Builder::Date(b), Cell::Date(v)) => b.append_value(v),
                (Builder::Ts(b), Cell::Ts(v)) => b.append_value(v),
                (Builder::Bool(b), Cell::Bool(v)) => b.append_value(v),
                (Builder::Str(b), Cell::Str(start, end)) => {
                    // parse_row checked this field is UTF-8.
                    b.append_value(field_text(record, text, start..end).unwrap_or_default());
                }
                (Builder::Int(b), _) => b.append_null(),
                (Builder::Float(b), _) => b.append_null(),
                (Builder::Dec(b), _) => b.append_null(),
                (Builder::Date(b), _) => b.append_null(),
                (Builder::Ts(b), _) => b.append_null(),
                (Builder::Bool(b), _) => b.append_null(),
                (Builder::Str(b), _) => b.append_null(),
            }
        }
    }

    fn flush(&mut self, bronze: &mut impl Sink, quarantine: &mut impl Sink) -> Result<()> {
        if self.opts.cancel.load(std::sync::atomic::Ordering::Relaxed) {
            // The run was stopped by a signal: its staging is being removed.
            return Err(Error::Input(
                "ingestion stopped: the run was cancelled".into(),
            ));
        }
        if self.lineage.rows > 0 {
            let mut columns: Vec<ArrayRef> =
                self.builders.iter_mut().map(Builder::finish).collect();
            columns.extend(self.lineage.finish(self.opts));
            bronze.write(columns)?;
        }
        if self.q_lineage.rows > 0 {
            let mut columns: Vec<ArrayRef> = vec![
                Arc::new(self.q_reason.finish()),
                Arc::new(self.q_raw.finish()),
            ];
            columns.extend(self.q_lineage.finish(self.opts));
            quarantine.write(columns)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::sources::{ColType, Column};

    #[test]
    fn key_counter_counts_every_repeat_of_int_and_string_keys() {
        let mut ints = KeyCounter::for_columns(vec![0]).unwrap();
        let record = ByteRecord::new();
        // 100 000 distinct keys spread over every bucket, then key 7 twice more
        // and key 8 once more: three rows whose key an earlier row had.
        for v in (0..100_000).chain([7, 7, 8]) {
            ints.add(&[Cell::Int(v)], &record);
        }
        ints.add(&[Cell::Null], &record);
        assert_eq!(ints.repeated(), 3);

        // The key is the second column: the first one never counts.
        let mut strings = KeyCounter::for_columns(vec![1]).unwrap();
        let record = ByteRecord::from(vec!["e1", " e1 ", "e2", "E1", "e10"]);
        let key = Column {
            name: "key".into(),
            ty: ColType::Str,
            required: true,
            primary_key: true,
            checks: Default::default(),
        };
        for i in 0..record.len() {
            let range = record.range(i).unwrap();
            let field = std::str::from_utf8(&record[i]).unwrap();
            let cell = parse_cell(&key, field, range.start).unwrap();
            strings.add(&[Cell::Int(1), cell], &record);
        }
        // " e1 " is stored trimmed, so it repeats "e1"; "E1" is another key.
        assert_eq!(strings.repeated(), 1);
    }
}

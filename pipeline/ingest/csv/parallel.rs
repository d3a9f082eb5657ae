//! One large CSV file parsed on several cores (docs/performance.md).
//!
//! A splitter thread reads the file in blocks and runs the CSV state
//! machine over them (the same `csv-core` the parsers use, with the same
//! dialect), cutting a chunk after the first record end past `chunk_bytes`:
//! a quoted line break, or a quote that never closes, stays inside its
//! record. Parser threads turn chunks into Arrow columns and quarantine
//! rows exactly as a sequential read would, numbering lines from the
//! chunk's first line. The calling thread writes the chunks' batches to the
//! file's part in file order, so the part, its line numbers and the
//! quarantine equal a sequential read of the file, row for row.
//!
//! A file is read this way only when the run has a slot idle as it starts
//! (`ingest::Workload`): one parser is the model's own, one more runs on each
//! slot borrowed, and the slots go back when the file is read. Chunks in
//! flight are bounded by permits the writer hands back, so memory stays a
//! few chunks per parser whatever the file size.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};

use csv::ByteRecord;
use datafusion::arrow::array::ArrayRef;

use super::{IngestState, cr_as_lf, csv_reader};
use crate::error::{Error, Result};
use crate::ingest::columns::{KeyCounter, Sink, TableSink};
use crate::ingest::files::{Busy, IngestOptions, IngestReport, InputFile};
use crate::ingest::sources::Source;

/// Bytes the splitter reads at a time.
const BLOCK_BYTES: usize = 1 << 20;

/// Whether a file of `size` bytes is worth cutting: at least two chunks,
/// and a second slot to parse one in.
pub(super) fn worth_it(opts: &IngestOptions, size: u64) -> bool {
    opts.chunk_bytes > 0 && size >= 2 * opts.chunk_bytes as u64 && opts.workload.slots() > 1
}

/// Where a file's records start and how they map to the declared columns.
pub(super) struct Layout<'m> {
    /// Byte offset of the first record after the header.
    pub start: u64,
    /// The file's line number at `start`.
    pub first_line: u64,
    /// Lines end in `\r` alone: each `\r` is read as `\n`.
    pub cr_only: bool,
    pub mapping: &'m [Option<usize>],
    pub header_len: usize,
}

/// Whole records of a file, from line `first_line` on.
struct Chunk {
    seq: u64,
    bytes: Vec<u8>,
    first_line: u64,
    /// A reader strips a byte-order mark from the start of its first input
    /// only: a chunk the file's reader would have reached after reading a
    /// record (any but the first of a file without a header) is read after
    /// a stand-in record its parser drops, so that it strips none.
    primed: bool,
}

/// What a parser made of one chunk.
struct Parsed {
    seq: u64,
    bronze: Vec<Vec<ArrayRef>>,
    quarantine: Vec<Vec<ArrayRef>>,
    report: IngestReport,
}

impl IngestState<'_> {
    /// Read one CSV file's records (after its header) with one parser more
    /// per `borrowed` slot into `bronze` and `quarantine`, as
    /// `read_records` would alone.
    pub(super) fn read_chunks(
        &mut self,
        file: &InputFile,
        layout: &Layout<'_>,
        borrowed: Vec<Busy>,
        bronze: &mut TableSink,
        quarantine: &mut TableSink,
    ) -> Result<()> {
        let (source, opts) = (self.source, self.opts);
        let parsers = 1 + borrowed.len();
        // Chunks cut but not yet written: two per parser keeps every parser
        // busy while the writer catches up.
        let in_flight = 2 * parsers;
        let (give_permit, permits) = sync_channel::<()>(in_flight);
        for _ in 0..in_flight {
            // Cannot fail: the channel has room for exactly these.
            let _ = give_permit.send(());
        }
        let (work_tx, work_rx) = sync_channel::<Chunk>(1);
        // Shared by the parsers only: once the last one is gone, the
        // splitter's next send fails and it stops.
        let work = Arc::new(Mutex::new(work_rx));
        let (done_tx, done_rx) = channel::<Result<Parsed>>();
        std::thread::scope(|scope| {
            let splitter = scope.spawn(|| split(source, opts, file, layout, work_tx, permits));
            // The model's own parser, then one on each borrowed slot, which
            // it gives back as it ends.
            let slots = std::iter::once(None).chain(borrowed.into_iter().map(Some));
            let parser_threads: Vec<_> = slots
                .map(|slot| {
                    let (done, work) = (done_tx.clone(), Arc::clone(&work));
                    scope.spawn(move || {
                        let _slot = slot;
                        let parsed = std::panic::catch_unwind(AssertUnwindSafe(|| {
                            parse_chunks(source, opts, file, layout, &work, &done)
                        }))
                        .unwrap_or_else(|_| Err(panicked("a CSV parser")));
                        match parsed {
                            Ok(keys) => keys,
                            Err(e) => {
                                // The writer stops at the error and reports it.
                                let _ = done.send(Err(e));
                                None
                            }
                        }
                    })
                })
                .collect();
            drop((done_tx, work));
            let mut outcome = self.write_in_order(done_rx, &give_permit, bronze, quarantine);
            // Unblocks a splitter waiting for a permit when writing stopped early.
            drop(give_permit);
            for parser in parser_threads {
                match parser.join() {
                    Ok(Some(keys)) => {
                        if let Some(mine) = self.keys.as_mut() {
                            mine.absorb(keys);
                        }
                    }
                    Ok(None) => {}
                    Err(_) => outcome = outcome.and(Err(panicked("a CSV parser"))),
                }
            }
            match splitter.join() {
                Ok(split) => outcome.and(split),
                Err(_) => outcome.and(Err(panicked("the CSV splitter"))),
            }
        })
    }

    /// Write parsed chunks in file order as they arrive; a permit goes back
    /// to the splitter for each chunk written. Stops at the first error.
    fn write_in_order(
        &mut self,
        done: Receiver<Result<Parsed>>,
        give_permit: &SyncSender<()>,
        bronze: &mut TableSink,
        quarantine: &mut TableSink,
    ) -> Result<()> {
        let mut waiting: BTreeMap<u64, Parsed> = BTreeMap::new();
        let mut next = 0;
        for parsed in done {
            let parsed = parsed?;
            waiting.insert(parsed.seq, parsed);
            while let Some(parsed) = waiting.remove(&next) {
                for columns in parsed.bronze {
                    bronze.write(columns)?;
                }
                for columns in parsed.quarantine {
                    quarantine.write(columns)?;
                }
                self.add(parsed.report);
                next += 1;
                // The splitter may be gone (it cut its last chunk).
                let _ = give_permit.send(());
            }
        }
        Ok(())
    }

    /// Add a chunk's counts to this file's, keeping the first of the
    /// records that span the most lines, as a sequential read does.
    fn add(&mut self, chunk: IngestReport) {
        self.report.rows += chunk.rows;
        self.report.quarantined += chunk.quarantined;
        self.report.quarantined_lines += chunk.quarantined_lines;
        if let Some(damaged) = chunk.damaged
            && self.report.damaged.as_ref().is_none_or(|d| d.2 < damaged.2)
        {
            self.report.damaged = Some(damaged);
        }
    }
}

fn panicked(what: &str) -> Error {
    Error::Input(format!(
        "{what} stopped unexpectedly; this is a bug in medallion"
    ))
}

/// Parse chunks until there are none, sending each one's batches and
/// counts to the writer; returns the primary keys seen.
fn parse_chunks(
    source: &Source,
    opts: &IngestOptions,
    file: &InputFile,
    layout: &Layout<'_>,
    work: &Mutex<Receiver<Chunk>>,
    done: &Sender<Result<Parsed>>,
) -> Result<Option<KeyCounter>> {
    let mut state = IngestState::new(source, opts)?;
    let mut record = ByteRecord::new();
    loop {
        // A poisoned lock means another parser panicked; its error is reported at join.
        let next = match work.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => break,
        };
        let Ok(chunk) = next else {
            break;
        };
        let (mut bronze, mut quarantine) = (Vec::new(), Vec::new());
        let stand_in: &[u8] = if chunk.primed { &stand_in(source) } else { &[] };
        let mut reader = csv_reader(source).from_reader(stand_in.chain(chunk.bytes.as_slice()));
        if chunk.primed {
            // The stand-in record (see `Chunk`); it cannot fail on bytes in memory.
            let _ = reader.read_byte_record(&mut record);
        }
        state.read_records(
            file,
            &mut reader,
            &mut record,
            layout.mapping,
            layout.header_len,
            chunk.first_line - 1 - u64::from(chunk.primed),
            &mut bronze,
            &mut quarantine,
        )?;
        state.flush(&mut bronze, &mut quarantine)?;
        let parsed = Parsed {
            seq: chunk.seq,
            bronze,
            quarantine,
            report: std::mem::take(&mut state.report),
        };
        if done.send(Ok(parsed)).is_err() {
            // The writer stopped on an error; it reports it.
            break;
        }
    }
    Ok(state.keys.take())
}

/// Cut the file's records from `layout.start` on into chunks of whole
/// records, each at least `chunk_bytes` long but the last, and hand them to
/// the parsers, one permit each.
fn split(
    source: &Source,
    opts: &IngestOptions,
    file: &InputFile,
    layout: &Layout<'_>,
    work: SyncSender<Chunk>,
    permits: Receiver<()>,
) -> Result<()> {
    let read_error = |e| Error::io("cannot read input file", &file.path, e);
    let mut input = File::open(&file.path).map_err(read_error)?;
    input
        .seek(SeekFrom::Start(layout.start))
        .map_err(read_error)?;
    // The parsers' state machine: the same dialect as `csv_reader`.
    let mut machine = csv_core::ReaderBuilder::new()
        .delimiter(source.dialect.delimiter)
        .quote(source.dialect.quote)
        .terminator(csv_core::Terminator::Any(b'\n'))
        .build();
    let (mut fields, mut ends) = (vec![0u8; 1 << 16], vec![0usize; 1 << 10]);
    let stand_in = stand_in(source);
    if layout.start > 0 {
        // Past the header the file's reader strips no byte-order mark: a
        // record read first makes this one behave the same (see `Chunk`).
        machine.read_record(&stand_in, &mut fields, &mut ends);
    }
    let mut buffer: Vec<u8> = Vec::with_capacity(opts.chunk_bytes + BLOCK_BYTES);
    // Bytes of `buffer` the machine has read, and the end of its last record.
    let (mut scanned, mut record_end) = (0, 0);
    let (mut seq, mut line, mut eof) = (0, layout.first_line, false);
    loop {
        while record_end < opts.chunk_bytes {
            if scanned == buffer.len() {
                if eof {
                    // A last record without a line end ends with the file.
                    record_end = buffer.len();
                    break;
                }
                let before = buffer.len();
                let read = (&mut input)
                    .take(BLOCK_BYTES as u64)
                    .read_to_end(&mut buffer)
                    .map_err(read_error)?;
                if layout.cr_only {
                    cr_as_lf(&mut buffer[before..]);
                }
                eof = read == 0;
                continue;
            }
            // Field bytes are not kept: only where records end matters.
            let (result, read, _, _) =
                machine.read_record(&buffer[scanned..], &mut fields, &mut ends);
            scanned += read;
            if result == csv_core::ReadRecordResult::Record {
                record_end = scanned;
            }
        }
        if record_end == 0 {
            return Ok(());
        }
        if opts.cancel.load(Ordering::Relaxed) {
            return Err(Error::Input(
                "ingestion stopped: the run was cancelled".into(),
            ));
        }
        if permits.recv().is_err() {
            // The writer stopped on an error; it reports it.
            return Ok(());
        }
        let primed = seq > 0 || layout.start > 0;
        let rest = buffer.split_off(record_end);
        let bytes = std::mem::replace(&mut buffer, rest);
        scanned -= record_end;
        record_end = 0;
        let lines = bytes.iter().filter(|b| **b == b'\n').count() as u64;
        let chunk = Chunk {
            seq,
            bytes,
            first_line: line,
            primed,
        };
        if work.send(chunk).is_err() {
            return Ok(());
        }
        seq += 1;
        line += lines;
    }
}

/// A record of one plain field in `source`'s dialect: a letter that is
/// neither its delimiter nor its quote, and a line end.
fn stand_in(source: &Source) -> [u8; 2] {
    let dialect = &source.dialect;
    let letter = [b'x', b'y', b'z']
        .into_iter()
        .find(|c| *c != dialect.delimiter && *c != dialect.quote)
        .unwrap_or(b'x');
    [letter, b'\n']
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::RecordBatch;
    use datafusion::arrow::compute::concat_batches;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use rand::{Rng, SeedableRng};

    use crate::ingest::files::{IngestOptions, IngestReport, InputFile, Workload};
    use crate::ingest::sources::{Source, load_sources, quarantine_schema};

    const DECLARATION: &str = r#"
description = "Rows of every kind of trouble."
[source]
path = "things"
primary_key = "id"
[[source.columns]]
name = "id"
type = "int"
[[source.columns]]
name = "note"
type = "str"
required = false
[[source.columns]]
name = "amount"
type = "dec(10,2)"
[[source.columns]]
name = "at"
type = "ts"
"#;

    fn source() -> (tempfile::TempDir, Source) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bronze")).unwrap();
        std::fs::write(dir.path().join("bronze/bronze_things.toml"), DECLARATION).unwrap();
        let source = load_sources(dir.path()).unwrap().remove(0);
        (dir, source)
    }

    /// A CSV file with what real exports hold: quoted delimiters and line
    /// breaks, doubled quotes, a quote inside an unquoted field, blank and
    /// CRLF lines, byte-order marks inside, bad values, short rows, repeated
    /// keys and, sometimes, a quote that never closes.
    fn messy(seed: u64) -> Vec<u8> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut out = b"id,note,amount,at\n".to_vec();
        let rows = rng.random_range(0..400);
        for i in 0..rows {
            let id = if rng.random_bool(0.05) { i / 2 } else { i };
            let note = match rng.random_range(0..8) {
                0 => String::new(),
                1 => "\"a, b\"".to_string(),
                2 => "\"two\nlines\"".to_string(),
                3 => "\"say \"\"hi\"\"\"".to_string(),
                4 => "in\"side".to_string(),
                5 if rng.random_bool(0.1) => "\"never closed".to_string(),
                _ => format!("n{i}"),
            };
            let amount = match rng.random_range(0..10) {
                0 => "x".to_string(),
                _ => format!(
                    "{}.{:02}",
                    rng.random_range(0..1000),
                    rng.random_range(0..100)
                ),
            };
            let end = if rng.random_bool(0.2) { "\r\n" } else { "\n" };
            let line = match rng.random_range(0..30) {
                0 => String::new(),
                1 => format!("{id},{note}"),
                // A byte-order mark at the start of a line: part of its first field.
                2 => format!("\u{feff}{id},{note},{amount},2026-10-01 12:00:00"),
                _ => format!("{id},{note},{amount},2026-10-{:02} 12:00:00", 1 + i % 28),
            };
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(end.as_bytes());
        }
        out
    }

    /// The bronze and quarantine rows and the report of reading `bytes`,
    /// cut into chunks of `chunk_bytes` (0: read in one piece).
    fn read(
        source: &Source,
        bytes: &[u8],
        chunk_bytes: usize,
    ) -> (IngestReport, RecordBatch, RecordBatch) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("things.csv");
        std::fs::write(&path, bytes).unwrap();
        let opts = IngestOptions {
            batch_rows: 7,
            run_id: "test".into(),
            ingested_at: 0,
            writer_properties: Default::default(),
            cancel: Default::default(),
            chunk_bytes,
            workload: Arc::new(Workload::new(3)),
        };
        let file = InputFile {
            path,
            name: "things.csv".into(),
        };
        let (bronze, quarantine) = (dir.path().join("b"), dir.path().join("q"));
        let report = super::super::ingest_source(
            source,
            &[file],
            &["things".to_string()],
            &bronze,
            &quarantine,
            &opts,
        )
        .unwrap();
        assert_eq!(
            opts.workload.borrowed(),
            0,
            "every borrowed slot is given back"
        );
        let table = |folder: &std::path::Path, schema| {
            let mut batches = Vec::new();
            for entry in std::fs::read_dir(folder).unwrap() {
                let reader = ParquetRecordBatchReaderBuilder::try_new(
                    std::fs::File::open(entry.unwrap().path()).unwrap(),
                )
                .unwrap()
                .build()
                .unwrap();
                batches.extend(reader.map(|b| b.unwrap()));
            }
            concat_batches(&schema, &batches).unwrap()
        };
        (
            report,
            table(&bronze, source.bronze_schema()),
            table(&quarantine, quarantine_schema()),
        )
    }

    #[test]
    fn a_file_cut_into_chunks_reads_as_in_one_piece() {
        let (_dir, source) = source();
        let mut cut = 0;
        for seed in 0..40 {
            let bytes = messy(seed);
            let whole = read(&source, &bytes, 0);
            for chunk_bytes in [1, 13, 64, 256] {
                if bytes.len() >= 2 * chunk_bytes {
                    cut += 1;
                }
                let chunked = read(&source, &bytes, chunk_bytes);
                assert_eq!(whole.0, chunked.0, "seed {seed}, chunks of {chunk_bytes}");
                assert_eq!(whole.1, chunked.1, "seed {seed}, chunks of {chunk_bytes}");
                assert_eq!(whole.2, chunked.2, "seed {seed}, chunks of {chunk_bytes}");
            }
        }
        assert!(cut > 100, "only {cut} reads were cut into chunks");
    }
}

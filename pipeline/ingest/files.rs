//! The files of a source, the settings of one ingestion and what it
//! reports.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::parquet::file::properties::WriterProperties;
use twox_hash::xxhash3_128::Hasher as Xxh3;

use super::sources::Source;
use crate::error::{Error, Result};

/// Settings of one ingestion.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub batch_rows: usize,
    pub run_id: String,
    /// `_ingested_at` of every row of this run, µs since the epoch (UTC).
    pub ingested_at: i64,
    pub writer_properties: WriterProperties,
    /// Raised when the run is cancelled: ingestion stops at its next batch.
    pub cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// A CSV file of at least two chunks of this many bytes is cut at record
    /// boundaries and its chunks parsed on the idle slots (`csv::parallel`);
    /// 0 reads every file in one piece.
    pub chunk_bytes: usize,
    /// The run's slots: a large file's extra parsers take only idle ones.
    pub workload: Arc<Workload>,
}

/// How many slots (cores a model may keep busy) a run has, and how many
/// are in use: one by each model being built, one by each extra parser a
/// large CSV file borrowed. A file takes only slots that are idle when it
/// starts, and the scheduler starts no model into a borrowed slot, so the
/// run never keeps more threads busy than it has slots.
#[derive(Debug)]
pub struct Workload {
    running: AtomicUsize,
    helpers: AtomicUsize,
    slots: usize,
}

impl Workload {
    /// `slots` at once (at least 1).
    pub fn new(slots: usize) -> Self {
        Workload {
            running: AtomicUsize::new(0),
            helpers: AtomicUsize::new(0),
            slots: slots.max(1),
        }
    }

    /// The run's slots: its model limit, but no more than the cores.
    pub fn for_run(max_concurrent_models: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Workload::new(max_concurrent_models.min(cores))
    }

    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Slots extra parsers hold now.
    pub fn borrowed(&self) -> usize {
        self.helpers.load(Ordering::Relaxed)
    }

    /// A model is being built until the guard drops.
    pub fn enter(self: &Arc<Self>) -> Busy {
        self.running.fetch_add(1, Ordering::Relaxed);
        Busy {
            workload: Arc::clone(self),
            helper: false,
        }
    }

    /// Every slot idle now, each held for an extra parser until its guard drops.
    pub fn borrow_idle(self: &Arc<Self>) -> Vec<Busy> {
        let mut taken = Vec::new();
        while self
            .running
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.slots).then_some(n + 1)
            })
            .is_ok()
        {
            self.helpers.fetch_add(1, Ordering::Relaxed);
            taken.push(Busy {
                workload: Arc::clone(self),
                helper: true,
            });
        }
        taken
    }
}

/// One slot of a [`Workload`] in use.
pub struct Busy {
    workload: Arc<Workload>,
    helper: bool,
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.helper {
            self.workload.helpers.fetch_sub(1, Ordering::Relaxed);
        }
        self.workload.running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What one source ingestion produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub files: usize,
    pub rows: u64,
    pub quarantined: u64,
    /// Physical lines the quarantined records span: a record whose quote
    /// never closed spans every line it swallowed, and they all count.
    pub quarantined_lines: u64,
    /// The quarantined record spanning the most lines, when it spans more
    /// than one: file, first line, lines spanned.
    pub damaged: Option<(String, u64, u64)>,
    /// Rows whose primary key an earlier row already had (silver drops them).
    pub duplicate_keys: u64,
    /// Each file's counts, in the order the files were read.
    pub per_file: Vec<FileCounts>,
}

/// What one input file gave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileCounts {
    pub rows: u64,
    pub quarantined: u64,
    pub quarantined_lines: u64,
}

impl IngestReport {
    /// Fail the source when its quarantined share of physical lines
    /// exceeds `max_fraction` (docs/models.md §1.1).
    pub fn check_bad_fraction(&self, source: &str, max_fraction: f64) -> Result<()> {
        let total = self.rows + self.quarantined_lines;
        if total == 0 {
            return Ok(());
        }
        let fraction = self.quarantined_lines as f64 / total as f64;
        if fraction > max_fraction {
            let damaged = self
                .damaged
                .as_ref()
                .map(|(file, line, lines)| {
                    format!(
                        "; the record starting at {file} line {line} spans {lines} lines \
                         (an unmatched quote?)"
                    )
                })
                .unwrap_or_default();
            return Err(Error::Source {
                source_name: source.to_string(),
                message: format!(
                    "{} of {} lines ({:.1} %) were quarantined, above max_bad_row_fraction {}{damaged}; \
                     see _quarantine/{source}/ for each row's reason, fix the input or raise the limit",
                    self.quarantined_lines,
                    total,
                    fraction * 100.0,
                    max_fraction
                ),
            });
        }
        Ok(())
    }
}

/// One input file of a source: its path and the name recorded in `_source_file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    pub path: PathBuf,
    /// Path relative to the input directory, `/`-separated (`orders.csv`, `bt_users_transactions/2026-11-21.csv`).
    pub name: String,
}

/// The files of a source (its declared `path` under `input`, docs/models.md
/// §1.5), in file-name order (the order duplicates are resolved in).
pub fn discover(input: &Path, source: &Source) -> Result<Vec<InputFile>> {
    Ok(super::sources::source_files_of(source, input)?
        .into_iter()
        .map(|(path, name)| InputFile { path, name })
        .collect())
}

/// A 128-bit digest of a file's bytes, hex: what tells a re-sent file with
/// new content from the one already ingested. XXH3-128 of each 1 MiB block,
/// then of the blocks' digests (the crate's streaming hasher would change
/// the features every dependant of it is built with).
pub fn content_hash(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut file =
        std::fs::File::open(path).map_err(|e| Error::io("cannot open input file", path, e))?;
    let mut blocks = Vec::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        // Fill the whole block, so the digest does not depend on how reads split.
        let mut filled = 0;
        while filled < buffer.len() {
            let n = file
                .read(&mut buffer[filled..])
                .map_err(|e| Error::io("cannot read input file", path, e))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            break;
        }
        blocks.extend_from_slice(&Xxh3::oneshot(&buffer[..filled]).to_le_bytes());
        if filled < buffer.len() {
            break;
        }
    }
    Ok(format!("{:032x}", Xxh3::oneshot(&blocks)))
}

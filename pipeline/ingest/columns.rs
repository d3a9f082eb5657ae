//! The typed columns CSV ingestion fills: parsed cells, Arrow builders per
//! column type, the lineage columns, the Parquet sink of a staged table and
//! the counter of repeated primary keys.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use csv::ByteRecord;
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder,
    RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::properties::WriterProperties;
use twox_hash::xxhash3_128::Hasher as Xxh3;

use super::files::IngestOptions;
use super::sources::ColType;
use crate::error::{Error, Result};
use crate::udf::repeated::Buckets;

/// A parsed field: strings stay in the record and are re-read on append.
#[derive(Debug, Clone, Copy)]
pub enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Dec(i128),
    /// The trimmed text's byte range in `ByteRecord::as_slice()`.
    Str(usize, usize),
    Date(i32),
    Ts(i64),
    Bool(bool),
}

pub enum Builder {
    Int(Int64Builder),
    Float(Float64Builder),
    Dec(Decimal128Builder),
    Str(StringBuilder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder),
    Bool(BooleanBuilder),
}

impl Builder {
    pub fn new(ty: ColType) -> Result<Self> {
        Ok(match ty {
            ColType::Int => Builder::Int(Int64Builder::new()),
            ColType::Float => Builder::Float(Float64Builder::new()),
            ColType::Dec(precision, scale) => {
                Builder::Dec(Decimal128Builder::new().with_precision_and_scale(precision, scale)?)
            }
            ColType::Str => Builder::Str(StringBuilder::new()),
            ColType::Date => Builder::Date(Date32Builder::new()),
            ColType::Ts => Builder::Ts(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
            ColType::Bool => Builder::Bool(BooleanBuilder::new()),
        })
    }

    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Float(b) => Arc::new(b.finish()),
            Builder::Dec(b) => Arc::new(b.finish()),
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Ts(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
        }
    }
}

/// Where finished batches of one output table go: a Parquet part, or (for
/// a chunk parsed beside others, `csv::parallel`) a list the part's writer
/// takes them from in file order.
pub trait Sink {
    fn write(&mut self, columns: Vec<ArrayRef>) -> Result<()>;
}

impl Sink for Vec<Vec<ArrayRef>> {
    fn write(&mut self, columns: Vec<ArrayRef>) -> Result<()> {
        self.push(columns);
        Ok(())
    }
}

/// Rows of one output table (bronze or quarantine) on their way to one
/// Parquet part.
pub struct TableSink {
    schema: SchemaRef,
    path: std::path::PathBuf,
    writer: ArrowWriter<File>,
    rows: usize,
}

impl TableSink {
    /// A part at `path` (its folder is created).
    pub fn create(path: &Path, schema: SchemaRef, props: &WriterProperties) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io("cannot create staging folder", dir, e))?;
        }
        let file =
            File::create(path).map_err(|e| Error::io("cannot create staging file", path, e))?;
        let props = crate::parquet::properties_for(props, &schema);
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))?;
        Ok(TableSink {
            schema,
            path: path.to_path_buf(),
            writer,
            rows: 0,
        })
    }

    /// Finish the part; one that got no rows is removed unless `keep_empty`
    /// (a table needs one file, even an empty one, to have a schema).
    pub fn close(self, keep_empty: bool) -> Result<()> {
        self.writer.close()?;
        if self.rows == 0 && !keep_empty {
            std::fs::remove_file(&self.path)
                .map_err(|e| Error::io("cannot remove empty part", &self.path, e))?;
        }
        Ok(())
    }
}

impl Sink for TableSink {
    fn write(&mut self, columns: Vec<ArrayRef>) -> Result<()> {
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        if batch.num_rows() > 0 {
            self.rows += batch.num_rows();
            self.writer.write(&batch)?;
        }
        Ok(())
    }
}

/// Give a staged table folder without parts one empty part, `empty.parquet`.
pub fn ensure_a_part(dir: &Path, schema: SchemaRef, props: &WriterProperties) -> Result<()> {
    let has_part = std::fs::read_dir(dir)
        .map_err(|e| Error::io("cannot list staging folder", dir, e))?
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().ends_with(".parquet"));
    if !has_part {
        TableSink::create(&dir.join("empty.parquet"), schema, props)?.close(true)?;
    }
    Ok(())
}

/// Lineage columns shared by the bronze and quarantine tables.
#[derive(Default)]
pub struct Lineage {
    file: StringBuilder,
    line: Int64Builder,
    /// Rows appended since the last `finish`.
    pub rows: usize,
}

impl Lineage {
    pub fn append(&mut self, file: &str, line: u64) {
        self.file.append_value(file);
        self.line
            .append_value(i64::try_from(line).unwrap_or(i64::MAX));
        self.rows += 1;
    }

    pub fn finish(&mut self, opts: &IngestOptions) -> Vec<ArrayRef> {
        let n = std::mem::take(&mut self.rows);
        let ingested = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
        let mut ingested = ingested;
        let mut run = StringBuilder::with_capacity(n, n * opts.run_id.len());
        for _ in 0..n {
            ingested.append_value(opts.ingested_at);
            run.append_value(&opts.run_id);
        }
        vec![
            Arc::new(self.file.finish()),
            Arc::new(self.line.finish()),
            Arc::new(ingested.finish()),
            Arc::new(run.finish()),
        ]
    }
}

/// Counts repeated primary keys while the rows stream by (docs/models.md §1.2: "the
/// count of dropped duplicates is reported"), instead of aggregating the
/// written table a second time.
///
/// Each key is hashed to 128 bits (XXH3) of which 72 are kept: the top 8
/// choose one of the 256 [`Buckets`], the low 64 are appended to it (the
/// value `key_hash()` gives a text key): appending to bucket ends stays in
/// the CPU's first-level cache, where one hash set of millions of keys does
/// not (docs/performance.md). Two different keys count as one with
/// probability about n²/2⁷³, 10⁻⁷ for 50 million keys.
pub struct KeyCounter {
    /// Positions of the primary key's columns among the source's columns.
    columns: Vec<usize>,
    hashes: Buckets,
    /// The key of a composite key, byte by byte, reused between rows.
    scratch: Vec<u8>,
}

impl KeyCounter {
    /// A counter over the key made of `columns`; `None` without a key.
    pub fn for_columns(columns: Vec<usize>) -> Option<Self> {
        (!columns.is_empty()).then(|| KeyCounter {
            columns,
            hashes: Buckets::default(),
            scratch: Vec::new(),
        })
    }

    /// Record the key of an accepted row, parsed into `cells`.
    pub fn add(&mut self, cells: &[Cell], record: &ByteRecord) {
        let hash = if let [column] = self.columns[..] {
            match cells[column] {
                Cell::Int(v) => Xxh3::oneshot(&v.to_le_bytes()),
                // The same trimmed bytes that append_row stores.
                Cell::Str(start, end) => Xxh3::oneshot(&record.as_slice()[start..end]),
                // A primary key is never empty (parse_cell quarantines that row).
                Cell::Null => return,
                other => Xxh3::oneshot(&cell_bytes(other, record)),
            }
        } else {
            // Each part with its length, so ("ab", "c") and ("a", "bc") differ.
            self.scratch.clear();
            for &column in &self.columns {
                let bytes = cell_bytes(cells[column], record);
                self.scratch
                    .extend_from_slice(&(bytes.len() as u64).to_le_bytes());
                self.scratch.extend_from_slice(&bytes);
            }
            Xxh3::oneshot(&self.scratch)
        };
        let bucket = (hash >> (128 - Buckets::BUCKET_BITS)) as usize;
        self.hashes.push(bucket, hash as u64);
    }

    /// Take in the keys another counter over the same columns saw (a
    /// parser of another chunk of the same source).
    pub fn absorb(&mut self, other: KeyCounter) {
        self.hashes.absorb(other.hashes);
    }

    /// Rows whose key an earlier row already had.
    pub fn repeated(self) -> u64 {
        self.hashes.repeats()
    }
}

/// The bytes a key cell is compared by.
fn cell_bytes(cell: Cell, record: &ByteRecord) -> Vec<u8> {
    match cell {
        Cell::Null => Vec::new(),
        Cell::Int(v) => v.to_le_bytes().to_vec(),
        Cell::Float(v) => v.to_bits().to_le_bytes().to_vec(),
        Cell::Dec(v) => v.to_le_bytes().to_vec(),
        Cell::Str(start, end) => record.as_slice()[start..end].to_vec(),
        Cell::Date(v) => v.to_le_bytes().to_vec(),
        Cell::Ts(v) => v.to_le_bytes().to_vec(),
        Cell::Bool(v) => vec![u8::from(v)],
    }
}

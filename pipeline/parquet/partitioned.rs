//! Streams a query result into a date-partitioned table: one
//! `<column>=YYYY-MM-DD/` folder per date (`__HIVE_DEFAULT_PARTITION__` for
//! NULL), the date column kept inside the files too, so that a reader that
//! ignores folder names still sees it, typed as a date.
//!
//! Each of DataFusion's output partitions writes its own file per date,
//! named `part-NNNNN-<tag>.parquet`; the tag (the run id) makes a rewritten
//! partition's file names new, which is how later runs see it changed.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::{Array, AsArray, Date32Array, RecordBatch};
use datafusion::arrow::compute::kernels::cmp::gt;
use datafusion::arrow::compute::{
    concat_batches, filter_record_batch, not, prep_null_mask_filter, sort_to_indices,
    take_record_batch,
};
use datafusion::arrow::datatypes::{DataType, Date32Type, SchemaRef};
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::Partitioning;
use datafusion::parquet::arrow::AsyncArrowWriter;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::prelude::ident;
use futures::StreamExt;

use super::write::{conform, storage_schema};
use crate::error::{Error, Result};

/// The folder name of NULL dates, as Hive and Spark spell it.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// A writer flushes its row group once it holds this much memory, so that
/// memory stays bounded with many dates open at once.
const FLUSH_BYTES: usize = 2 << 20;

/// Rows of one date gathered before they are written.
const WRITE_ROWS: usize = 8192;

/// A date of a partitioned table: days since the epoch, or NULL.
pub type PartitionDate = Option<i32>;

/// `YYYY-MM-DD` of a date, or the NULL folder's value.
pub fn date_text(date: PartitionDate) -> String {
    match date.and_then(|d| chrono::NaiveDate::from_num_days_from_ce_opt(d + 719_163)) {
        Some(d) => d.format("%Y-%m-%d").to_string(),
        None => NULL_PARTITION.to_string(),
    }
}

/// The date of a `YYYY-MM-DD` (or NULL folder) value; `None` when not one.
pub fn parse_date(text: &str) -> Option<PartitionDate> {
    if text == NULL_PARTITION {
        return Some(None);
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(Some(
        date.signed_duration_since(chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?)
            .num_days() as i32,
    ))
}

/// Where the partitions of a table version go: rows dated up to the as-of
/// date (and NULL) into the table, later ones into the folder kept for them.
#[derive(Debug, Clone)]
pub struct Placement {
    pub table: PathBuf,
    pub future: PathBuf,
    /// Days since the epoch.
    pub as_of: i32,
    /// The date column that places a row on its side of the as-of date;
    /// `None`: the partition date does (a partition is on one side whole).
    pub as_of_by: Option<String>,
}

impl Placement {
    /// The folder of a whole partition, `<base>/<by>=<date>`, on the side
    /// its date is on.
    pub fn folder(&self, by: &str, date: PartitionDate) -> PathBuf {
        self.side_folder(by, date, date.is_some_and(|d| d > self.as_of))
    }

    /// The folder of `date`'s partition on the table's side or, when
    /// `future`, on the side of the rows after the as-of date.
    pub fn side_folder(&self, by: &str, date: PartitionDate, future: bool) -> PathBuf {
        let base = if future { &self.future } else { &self.table };
        base.join(format!("{by}={}", date_text(date)))
    }
}

/// The rows written to one partition: all of them, and how many of those
/// were held back as dated after the as-of date.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    pub rows: u64,
    pub held: u64,
}

/// Execute `df` and write its rows into the partition folders of
/// `placement`. Returns the rows written per date (dates without rows are
/// absent).
pub async fn write_partitioned(
    df: DataFrame,
    by: &str,
    placement: &Placement,
    tag: &str,
    props: &WriterProperties,
) -> Result<BTreeMap<PartitionDate, Count>> {
    let column = date_column(df.schema().as_arrow(), by)?;
    let day = match &placement.as_of_by {
        Some(name) if name != by => Some(sidecar_date_column(
            df.schema().as_arrow(),
            name,
            "as_of_by",
        )?),
        _ => None,
    };
    // Each date in one stream, so one file per date, not one per stream.
    let streams = df.task_ctx().session_config().target_partitions();
    let df = df.repartition(Partitioning::Hash(vec![ident(by)], streams))?;
    let streams = df.execute_stream_partitioned().await?;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, stream) in streams.into_iter().enumerate() {
        let writer = StreamWriter {
            by: by.to_string(),
            column,
            day,
            file: format!("part-{i:05}-{tag}.parquet"),
            props: props.clone(),
            placement: placement.clone(),
        };
        tasks.spawn(writer.run(stream));
    }
    let mut rows: BTreeMap<PartitionDate, Count> = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        for ((date, future), n) in done?? {
            let count = rows.entry(date).or_default();
            count.rows += n;
            if future {
                count.held += n;
            }
        }
    }
    Ok(rows)
}

/// The index of the date column `by`, or an error saying how to declare it.
pub fn date_column(schema: &datafusion::arrow::datatypes::Schema, by: &str) -> Result<usize> {
    sidecar_date_column(schema, by, "by")
}

/// The index of the date column `by` that the sidecar's
/// `incremental.<key>` names, or an error naming that key.
fn sidecar_date_column(
    schema: &datafusion::arrow::datatypes::Schema,
    by: &str,
    key: &str,
) -> Result<usize> {
    let column = schema.index_of(by).map_err(|_| {
        Error::Input(format!(
            "the model's output has no column `{by}` (named by `incremental.{key}`): select it, or change `incremental.{key}` in its sidecar"
        ))
    })?;
    let kind = schema.field(column).data_type();
    if kind != &DataType::Date32 {
        return Err(Error::Input(format!(
            "`{by}` is {kind}, not a date: `incremental.{key}` names a DATE column (cast it in the SELECT)"
        )));
    }
    Ok(column)
}

/// One output stream of the query, split by date, one file per date (and
/// side of the as-of date).
struct StreamWriter {
    by: String,
    column: usize,
    /// The column of `Placement::as_of_by`, when not the partition date.
    day: Option<usize>,
    file: String,
    props: WriterProperties,
    placement: Placement,
}

/// One date's file: its writer, rows written, and rows waiting to be
/// written together (a batch spreads over many dates, so its share of one
/// date is small; writing such slices one by one costs more than the data).
struct DateWriter {
    writer: AsyncArrowWriter<tokio::fs::File>,
    rows: u64,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
}

impl DateWriter {
    async fn write_pending(&mut self, schema: &SchemaRef) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = concat_batches(schema, &self.pending)?;
        self.pending.clear();
        self.pending_rows = 0;
        self.writer.write(&batch).await?;
        // Bounded memory per open date, whatever the row group setting.
        if self.writer.memory_size() > FLUSH_BYTES {
            self.writer.flush().await?;
        }
        Ok(())
    }
}

impl StreamWriter {
    async fn run(
        self,
        mut stream: SendableRecordBatchStream,
    ) -> Result<BTreeMap<(PartitionDate, bool), u64>> {
        let schema = storage_schema(&stream.schema());
        let mut writers: BTreeMap<(PartitionDate, bool), DateWriter> = BTreeMap::new();
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            let batch = conform(&batch, &schema)?;
            let parts = split_by_date(&batch, self.column)?;
            for (date, future, part) in self.sides(parts)? {
                let w = match writers.entry((date, future)) {
                    Entry::Occupied(open_writer) => open_writer.into_mut(),
                    Entry::Vacant(slot) => {
                        let path = self
                            .placement
                            .side_folder(&self.by, date, future)
                            .join(&self.file);
                        let writer = open(&path, &schema, &self.props).await?;
                        slot.insert(DateWriter {
                            writer,
                            rows: 0,
                            pending: Vec::new(),
                            pending_rows: 0,
                        })
                    }
                };
                w.rows += part.num_rows() as u64;
                w.pending_rows += part.num_rows();
                w.pending.push(part);
                if w.pending_rows >= WRITE_ROWS {
                    w.write_pending(&schema).await?;
                }
            }
        }
        let mut written = BTreeMap::new();
        for (date, mut w) in writers {
            w.write_pending(&schema).await?;
            w.writer.close().await?;
            written.insert(date, w.rows);
        }
        Ok(written)
    }

    /// Each date's rows split by side of the as-of date: by the row's own
    /// day (`day`), or whole by the partition date.
    fn sides(
        &self,
        parts: Vec<(PartitionDate, RecordBatch)>,
    ) -> Result<Vec<(PartitionDate, bool, RecordBatch)>> {
        let as_of = self.placement.as_of;
        let Some(day) = self.day else {
            return Ok(parts
                .into_iter()
                .map(|(date, part)| (date, date.is_some_and(|d| d > as_of), part))
                .collect());
        };
        let mut sides = Vec::with_capacity(parts.len());
        for (date, part) in parts {
            let days = part.column(day).as_primitive::<Date32Type>();
            // NULL days are published, as NULL partition dates are.
            let later = gt(days, &Date32Array::new_scalar(as_of))?;
            // (`prep_null_mask_filter` expects an array that has NULLs.)
            let later = if later.null_count() > 0 {
                prep_null_mask_filter(&later)
            } else {
                later
            };
            match later.true_count() {
                0 => sides.push((date, false, part)),
                n if n == part.num_rows() => sides.push((date, true, part)),
                _ => {
                    sides.push((date, false, filter_record_batch(&part, &not(&later)?)?));
                    sides.push((date, true, filter_record_batch(&part, &later)?));
                }
            }
        }
        Ok(sides)
    }
}

/// `batch` split by the date in column `column` (a Date32): one take in
/// date order, then a zero-copy slice per date.
fn split_by_date(batch: &RecordBatch, column: usize) -> Result<Vec<(PartitionDate, RecordBatch)>> {
    let dates = batch.column(column).as_primitive::<Date32Type>();
    let order = sort_to_indices(dates, None, None)?;
    let sorted = take_record_batch(batch, &order)?;
    let dates = sorted.column(column).as_primitive::<Date32Type>();
    let mut parts = Vec::new();
    let mut start = 0;
    for i in 1..=dates.len() {
        let date = |i: usize| dates.is_valid(i).then(|| dates.value(i));
        if i == dates.len() || date(i) != date(start) {
            parts.push((date(start), sorted.slice(start, i - start)));
            start = i;
        }
    }
    Ok(parts)
}

async fn open(
    path: &Path,
    schema: &SchemaRef,
    props: &WriterProperties,
) -> Result<AsyncArrowWriter<tokio::fs::File>> {
    if let Some(folder) = path.parent() {
        tokio::fs::create_dir_all(folder)
            .await
            .map_err(|e| Error::io("cannot create partition folder", folder, e))?;
    }
    super::write::open(path, schema, props).await
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn a_missing_or_untyped_date_column_names_the_sidecar_key() {
        let schema = Schema::new(vec![
            Field::new("order_month", DataType::Date32, true),
            Field::new("order_day", DataType::Utf8, true),
        ]);
        assert_eq!(date_column(&schema, "order_month").unwrap(), 0);
        let missing = date_column(&schema, "month").unwrap_err().to_string();
        assert!(
            missing.contains("`month`") && missing.contains("incremental.by"),
            "{missing}"
        );
        let text = sidecar_date_column(&schema, "order_day", "as_of_by")
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("Utf8") && text.contains("incremental.as_of_by"),
            "{text}"
        );
    }
}

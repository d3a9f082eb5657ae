//! Streams a query result to Parquet files in a staging folder, one file per
//! output partition, with the storage types of docs/models.md §2 enforced on the way.
//!
//! Nothing is collected: each partition's batches are cast and encoded as
//! they arrive, and DataFusion's partitions are written in parallel.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::dataframe::DataFrame;
use datafusion::parquet::arrow::{ArrowWriter, AsyncArrowWriter};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;

use super::policy::properties_for;
use crate::error::{Error, Result};

/// The type a column is stored as: plain `Utf8`, `Int64` counts, `Float64`
/// rates, `Timestamp(µs, "UTC")`; decimals, dates and booleans as they are.
pub fn storage_type(dt: &DataType) -> DataType {
    match dt {
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::Timestamp(_, _) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => DataType::Int64,
        DataType::Float16 | DataType::Float32 => DataType::Float64,
        DataType::Dictionary(_, value) => storage_type(value),
        other => other.clone(),
    }
}

/// The schema a table is stored with.
pub fn storage_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| Field::new(f.name(), storage_type(f.data_type()), f.is_nullable()))
        .collect();
    Arc::new(Schema::new(fields))
}

pub(crate) fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(array, field)| {
            if array.data_type() == field.data_type() {
                Ok(array.clone())
            } else {
                cast(array, field.data_type())
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Execute `df` and write it under `dir` as `part-NNNNN.parquet` files.
/// Returns the number of rows written. An empty result still gets one file,
/// so every reader sees the table and its schema.
pub async fn write_dataframe(df: DataFrame, dir: &Path, props: &WriterProperties) -> Result<u64> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| Error::io("cannot create staging folder", dir, e))?;
    let streams = df.execute_stream_partitioned().await?;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, stream) in streams.into_iter().enumerate() {
        let path = dir.join(format!("part-{i:05}.parquet"));
        let props = props.clone();
        tasks.spawn(write_partition(stream, path, props, i == 0));
    }
    let mut rows = 0;
    while let Some(done) = tasks.join_next().await {
        rows += done??;
    }
    Ok(rows)
}

/// A Parquet file with `schema` and no rows: what an empty table is made
/// of, so that readers still see its columns.
pub fn empty_parquet(schema: &SchemaRef, props: &WriterProperties) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let props = properties_for(props, schema);
    let writer = ArrowWriter::try_new(&mut bytes, schema.clone(), Some(props))?;
    writer.close()?;
    Ok(bytes)
}

async fn write_partition(
    mut stream: SendableRecordBatchStream,
    path: PathBuf,
    props: WriterProperties,
    always: bool,
) -> Result<u64> {
    let schema = storage_schema(&stream.schema());
    let mut writer: Option<AsyncArrowWriter<tokio::fs::File>> = None;
    let mut rows = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        if batch.num_rows() == 0 {
            continue;
        }
        let batch = conform(&batch, &schema)?;
        if writer.is_none() {
            writer = Some(open(&path, &schema, &props).await?);
        }
        if let Some(w) = writer.as_mut() {
            w.write(&batch).await?;
        }
        rows += batch.num_rows() as u64;
    }
    if writer.is_none() && always {
        writer = Some(open(&path, &schema, &props).await?);
    }
    if let Some(w) = writer {
        w.close().await?;
    }
    Ok(rows)
}

pub(crate) async fn open(
    path: &Path,
    schema: &SchemaRef,
    props: &WriterProperties,
) -> Result<AsyncArrowWriter<tokio::fs::File>> {
    let file = tokio::fs::File::create(path)
        .await
        .map_err(|e| Error::io("cannot create staging file", path, e))?;
    Ok(AsyncArrowWriter::try_new(
        file,
        schema.clone(),
        Some(properties_for(props, schema)),
    )?)
}

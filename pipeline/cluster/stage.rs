//! Tables a cluster writes: executors write a model's files straight under
//! `<root>/_staging/<run_id>/<layer>/<table>/` of the object store, the
//! driver keeps one task attempt's files, runs the data tests there, and
//! publishes by copying inside the store and writing the manifest.

use std::sync::Arc;

use datafusion::parquet::file::metadata::ParquetMetaDataReader;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use datafusion::arrow::array::UInt64Array;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::Column;
use datafusion::common::config::TableParquetOptions;
use datafusion::dataframe::{DataFrame, DataFrameWriteOptions};
use datafusion::logical_expr::{Expr, cast as cast_expr};

use crate::error::{Error, Result};
use datafusion::parquet::file::properties::WriterProperties;

use super::limit::within_cluster_limit;
use crate::parquet::{empty_parquet, options_for, storage_type};
use crate::storage::{Marker, ObjectRoot};

/// Folder under the root where a cluster stages tables before publishing.
const STAGING: &str = "_staging";

impl ObjectRoot {
    /// Where a cluster writes a model's files before its data tests: a
    /// folder under `_staging/<run_id>/` of this root, as a URL for
    /// DataFusion. Nothing there is ever read by a reader of the tables.
    pub fn staging_url(&self, run_id: &str, layer: &str, table: &str) -> String {
        let path = self.child(&[STAGING, run_id, layer, table]);
        format!("{}/", self.object_url(&path))
    }

    /// Publish files a cluster wrote under [`ObjectRoot::staging_url`]: each
    /// is copied inside the store (no data passes through this process) to
    /// a run-unique name in the table folder, then the manifest is written
    /// and the staged copies are removed, as in [`ObjectRoot::publish`].
    pub async fn publish_staged(
        &self,
        run_id: &str,
        layer: &str,
        table: &str,
        rows: u64,
        fingerprint: Option<String>,
    ) -> Result<()> {
        let mut sources: Vec<ObjectPath> = self
            .staged_parquet(run_id, layer, table)
            .await?
            .into_iter()
            .map(|meta| meta.location)
            .collect();
        sources.sort();
        let table_path = self.table_path(layer, table);
        let mut files = Vec::new();
        for (i, source) in sources.iter().enumerate() {
            let unique = format!("part-{i:05}-{run_id}.parquet");
            self.store()
                .copy(source, &table_path.clone().join(unique.as_str()))
                .await?;
            files.push(unique);
        }
        let manifest = Marker {
            run_id: run_id.to_string(),
            rows,
            files,
            fingerprint,
            ..Marker::default()
        };
        self.commit(&table_path, manifest).await?;
        self.discard_staged(run_id, layer, table).await
    }

    /// Keep exactly one attempt's files of what a cluster staged for a table.
    ///
    /// Ballista re-runs the tasks of a lost executor, including the one
    /// task that writes a model's files (DataFusion's sink writes from one
    /// partition, naming every file `<write_id>_<n>.parquet` with a fresh
    /// `write_id` per attempt). The lost attempt's files, whole or partial,
    /// stay next to the ones of the attempt that succeeded, and publishing
    /// both would duplicate rows. So files are grouped by `write_id`, and the
    /// group whose Parquet footers add up to the `rows` the sink reported is
    /// kept; the others are deleted. No such group means the staged output
    /// cannot be trusted: an error, and nothing is published.
    pub async fn settle_staged(
        &self,
        run_id: &str,
        layer: &str,
        table: &str,
        rows: u64,
    ) -> Result<()> {
        let files = self.staged_parquet(run_id, layer, table).await?;
        let mut attempts: std::collections::BTreeMap<String, (u64, Vec<ObjectPath>)> =
            Default::default();
        for meta in files {
            let name = meta.location.filename().unwrap_or_default();
            let attempt = name.rsplit_once('_').map_or(name, |(id, _)| id).to_string();
            let file_rows = parquet_rows(&self.store(), &meta).await?;
            let entry = attempts.entry(attempt).or_default();
            entry.0 += file_rows;
            entry.1.push(meta.location);
        }
        if attempts.len() <= 1 && attempts.values().all(|(n, _)| *n == rows) {
            return Ok(());
        }
        let keep = attempts
            .iter()
            .find(|(_, (n, _))| *n == rows)
            .map(|(id, _)| id.clone());
        if rows > 0 && keep.is_none() {
            return Err(Error::Cluster(format!(
                "{layer}/{table}: the cluster reported {rows} rows, but no attempt's staged files                  hold that many ({}); an executor was probably lost while writing. Nothing was                  published; re-run the model",
                attempts
                    .iter()
                    .map(|(id, (n, f))| format!("{id}: {n} rows in {} files", f.len()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        for (id, (_, paths)) in &attempts {
            if Some(id) != keep.as_ref() {
                tracing::warn!(table = %table, attempt = %id, files = paths.len(), "Removing files of a task attempt the cluster re-ran.");
                for path in paths {
                    self.store().delete(path).await?;
                }
            }
        }
        Ok(())
    }

    /// The Parquet files a cluster staged for a table.
    async fn staged_parquet(
        &self,
        run_id: &str,
        layer: &str,
        table: &str,
    ) -> Result<Vec<object_store::ObjectMeta>> {
        Ok(self
            .store()
            .list(Some(&self.child(&[STAGING, run_id, layer, table])))
            .try_filter(|m| futures::future::ready(m.location.as_ref().ends_with(".parquet")))
            .try_collect()
            .await?)
    }

    /// Add a file of the driver's own to what a cluster staged for a table.
    pub async fn stage_file(
        &self,
        run_id: &str,
        layer: &str,
        table: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<()> {
        self.store()
            .put(
                &self.child(&[STAGING, run_id, layer, table, name]),
                PutPayload::from(bytes),
            )
            .await?;
        Ok(())
    }

    /// Remove what a cluster staged for one table (its tests failed).
    pub async fn discard_staged(&self, run_id: &str, layer: &str, table: &str) -> Result<()> {
        self.delete_prefix(&self.child(&[STAGING, run_id, layer, table]))
            .await
    }

    /// Remove every staged file: called with the lock held, so anything
    /// there was left by a run that died.
    pub async fn clear_staging(&self) -> Result<()> {
        self.delete_prefix(&self.child(&[STAGING])).await
    }
}

/// Where a cluster stages one model's table.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub root: &'a ObjectRoot,
    pub run_id: &'a str,
    pub layer: &'a str,
    pub table: &'a str,
}

/// Have the cluster write `df` under the table's staging folder, keep one
/// task attempt's files, and give an empty result its one file with the
/// columns; returns the rows written. Past `limit` seconds (0 = none) the
/// query fails. A failed write's staged files are removed.
pub async fn stage_query(
    target: Target<'_>,
    df: DataFrame,
    options: TableParquetOptions,
    props: &WriterProperties,
    limit: u64,
) -> Result<u64> {
    let Target {
        root,
        run_id,
        layer,
        table,
    } = target;
    let url = root.staging_url(run_id, layer, table);
    let written = async {
        let (rows, schema) = within_cluster_limit(
            limit,
            || format!("the query of {table}"),
            write_on_cluster(df, &url, options),
        )
        .await?;
        root.settle_staged(run_id, layer, table, rows).await?;
        Ok::<_, Error>((rows, schema))
    };
    let (rows, schema) = match written.await {
        Ok(written) => written,
        Err(error) => {
            // Executors may have written some files before the failure;
            // the next run would clear them, but nothing should linger.
            if let Err(cleanup) = root.discard_staged(run_id, layer, table).await {
                tracing::warn!(model = %table, error = %cleanup, "Could not remove a failed model's staged files; the next run will.");
            }
            return Err(error);
        }
    };
    if rows == 0 {
        // Executors write no file for an empty result; as on the local
        // engine, an empty table is one file that still has its columns.
        let bytes = empty_parquet(&schema, props)?;
        root.stage_file(run_id, layer, table, "part-00000.parquet", bytes)
            .await?;
    }
    Ok(rows)
}

/// Run `df` on a Ballista cluster and have its executors write the result
/// as Parquet files under `url` (an `s3://…/` folder), with the storage types
/// of [`storage_type`] and the given encoding. Returns the rows written and
/// the schema written. An empty result leaves no file at all (DataFusion
/// writes files per non-empty partition): see [`empty_parquet`].
pub async fn write_on_cluster(
    df: DataFrame,
    url: &str,
    options: TableParquetOptions,
) -> Result<(u64, SchemaRef)> {
    let schema = df.schema().clone();
    // Cast in the plan, so the executors write storage types directly.
    let columns: Vec<Expr> = schema
        .iter()
        .map(|(qualifier, field)| {
            let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
            let target = storage_type(field.data_type());
            if &target == field.data_type() {
                column
            } else {
                cast_expr(column, target).alias(field.name())
            }
        })
        .collect();
    let df = df.select(columns)?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let mut options = options;
    options_for(&mut options, &schema);
    let written = df
        .write_parquet(url, DataFrameWriteOptions::new(), Some(options))
        .await?;
    // The sink answers with one row: the number of rows it wrote.
    let mut rows = 0;
    for batch in &written {
        if let Some(counts) = batch
            .columns()
            .first()
            .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
        {
            rows += counts.iter().flatten().sum::<u64>();
        }
    }
    Ok((rows, schema))
}

/// Rows of a Parquet object, from its footer alone (two small range reads).
async fn parquet_rows(
    store: &Arc<dyn ObjectStore>,
    meta: &object_store::ObjectMeta,
) -> Result<u64> {
    let not_parquet = || Error::Cluster(format!("{}: not a whole Parquet file", meta.location));
    if meta.size < 12 {
        return Err(not_parquet());
    }
    // A Parquet file ends with the footer's length (4 bytes, LE) and `PAR1`.
    let tail = store
        .get_range(&meta.location, meta.size - 8..meta.size)
        .await?;
    if &tail[4..] != b"PAR1" {
        return Err(not_parquet());
    }
    let length = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    let start = meta.size.checked_sub(8 + length).ok_or_else(not_parquet)?;
    let footer = store
        .get_range(&meta.location, start..meta.size - 8)
        .await?;
    let metadata = ParquetMetaDataReader::decode_metadata(&footer)?;
    Ok(u64::try_from(metadata.file_metadata().num_rows()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::parquet::arrow::ArrowWriter;
    use url::Url;

    fn parquet(rows: i64) -> Vec<u8> {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from_iter_values(0..rows))],
        )
        .unwrap();
        let mut bytes = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut bytes, schema, None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        bytes
    }

    #[tokio::test]
    async fn only_the_attempt_matching_the_reported_rows_stays_staged() {
        let dir = tempfile::tempdir().unwrap();
        let root = ObjectRoot::new(Url::from_directory_path(dir.path()).unwrap()).unwrap();
        // A lost attempt (partial), a re-run that completed, and a complete duplicate.
        for (name, rows) in [
            ("cc_0.parquet", 1),
            ("aa_0.parquet", 3),
            ("bb_0.parquet", 2),
            ("bb_1.parquet", 1),
        ] {
            root.stage_file("r1", "gold", "t", name, parquet(rows))
                .await
                .unwrap();
        }
        let err = root
            .settle_staged("r1", "gold", "t", 5)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("reported 5 rows") && err.contains("re-run"),
            "{err}"
        );

        root.settle_staged("r1", "gold", "t", 3).await.unwrap();
        let left: Vec<String> = root
            .store()
            .list(Some(&root.child(&[STAGING, "r1", "gold", "t"])))
            .map_ok(|m| m.location.filename().unwrap_or_default().to_string())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(left, vec!["aa_0.parquet".to_string()]);
        // One attempt with the right rows: nothing to do, nothing removed.
        root.settle_staged("r1", "gold", "t", 3).await.unwrap();
    }
}

//! Delta Lake tables (`table_format = "delta"`), through delta-rs.
//!
//! Write–audit–publish stays as for Parquet: a model's new version is staged
//! as Parquet in a local folder and tested there; only a passing table is
//! written here, as one overwrite commit, so each publish is one table
//! version and a blocked or killed run commits nothing. The `_SUCCESS`
//! marker, with the version number, is written after the commit: data
//! first, marker last, as for Parquet tables. A run killed between the two
//! leaves a newer, complete version that the marker does not name yet;
//! the next run rebuilds that model (its fingerprint is not the marker's)
//! and commits again.
//!
//! Readers (the run, `medallion query`, `medallion docs`) read the version
//! the marker names, or an older one for time travel.

use std::sync::{Arc, Once};

use datafusion::parquet::file::properties::WriterProperties;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use deltalake::logstore::{
    LogStore, LogStoreFactory, ObjectStoreRef, StorageConfig, default_logstore, logstore_factories,
};
use deltalake::{DeltaResult, DeltaTable, DeltaTableBuilder, DeltaTableError};
use object_store::ObjectStore;
use url::Url;

use crate::error::{Error, Result};

/// Where a Delta table lives: its URL (a folder ending in `/`) and the
/// store holding it, rooted at the store's top (`file:///` or the bucket).
#[derive(Clone)]
pub struct DeltaLocation {
    pub url: Url,
    pub store: Arc<dyn ObjectStore>,
}

/// What one commit wrote.
pub struct Committed {
    pub version: u64,
}

/// The delta-rs log store for `s3://` tables: commits by conditional put
/// (`If-None-Match`), which S3 and MinIO honour, with the store medallion
/// already configured (endpoint, credentials) rather than a second one.
struct ConditionalPut;

impl LogStoreFactory for ConditionalPut {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

fn register_s3_log_store() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Ok(url) = Url::parse("s3://") {
            logstore_factories().insert(url, Arc::new(ConditionalPut));
        }
    });
}

fn delta_error(what: &str, location: &DeltaLocation, e: DeltaTableError) -> Error {
    Error::Input(format!("{what} Delta table {}: {e}", location.url))
}

/// The table at `location` with its log loaded (the newest version, or
/// `version`); `None` when there is no Delta table there yet.
pub async fn open(location: &DeltaLocation, version: Option<u64>) -> Result<Option<DeltaTable>> {
    register_s3_log_store();
    if version.is_none() && !has_log(location).await? {
        return Ok(None);
    }
    let builder = DeltaTableBuilder::from_url(location.url.clone())
        .map_err(|e| delta_error("cannot open", location, e))?
        .with_storage_backend(location.store.clone(), location.url.clone());
    let mut table = builder
        .build()
        .map_err(|e| delta_error("cannot open", location, e))?;
    let loaded = match version {
        Some(v) => table.load_version(v).await,
        None => table.load().await,
    };
    match loaded {
        Ok(()) => Ok(Some(table)),
        Err(DeltaTableError::NotATable(_)) if version.is_none() => Ok(None),
        Err(e) => Err(delta_error("cannot read", location, e)),
    }
}

/// Whether anything is under the table's `_delta_log/`.
async fn has_log(location: &DeltaLocation) -> Result<bool> {
    use futures::StreamExt;
    let log = object_store::path::Path::from_url_path(location.url.path())
        .map_err(|e| Error::Input(format!("Delta table {}: {e}", location.url)))?
        .join("_delta_log");
    Ok(location.store.list(Some(&log)).next().await.is_some())
}

/// Commit the Parquet files of the staged folder `staged` as a new version
/// of the table at `location` (created on first publish): one overwrite
/// commit, the schema replaced along with the rows, its files encoded with
/// the layer's Parquet settings `properties`.
pub async fn commit(
    ctx: &SessionContext,
    staged: &std::path::Path,
    location: &DeltaLocation,
    run_id: &str,
    properties: &WriterProperties,
) -> Result<Committed> {
    let table = match open(location, None).await? {
        Some(table) => table,
        None => {
            let builder = DeltaTableBuilder::from_url(location.url.clone())
                .map_err(|e| delta_error("cannot create", location, e))?
                .with_storage_backend(location.store.clone(), location.url.clone());
            builder
                .build()
                .map_err(|e| delta_error("cannot create", location, e))?
        }
    };
    let input = ctx
        .read_parquet(
            format!("{}/", staged.display()),
            ParquetReadOptions::default(),
        )
        .await?;
    let properties = crate::parquet::properties_for(properties, input.schema().as_arrow());
    let metadata = [
        ("medallion.run_id".to_string(), serde_json::json!(run_id)),
        (
            "medallion.version".to_string(),
            serde_json::json!(env!("CARGO_PKG_VERSION")),
        ),
    ];
    let written = table
        .write(Vec::new())
        // Planned by delta-rs's own session: its write plan has nodes only
        // its planner knows. The input is a plain scan of local files.
        .with_input_plan(input.logical_plan().clone())
        .with_save_mode(deltalake::protocol::SaveMode::Overwrite)
        .with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite)
        .with_writer_properties(properties)
        .with_commit_properties(
            deltalake::kernel::transaction::CommitProperties::default().with_metadata(metadata),
        )
        .await
        .map_err(|e| delta_error("cannot write", location, e))?;
    let version = written.version().ok_or_else(|| {
        Error::Input(format!(
            "Delta table {}: the write returned no version",
            location.url
        ))
    })?;
    Ok(Committed { version })
}

/// Register `version` of the Delta table at `location` as `name`.
pub async fn register(
    ctx: &SessionContext,
    name: &str,
    location: &DeltaLocation,
    version: u64,
) -> Result<()> {
    let newest = latest_version(location).await?;
    if newest.is_none_or(|newest| version > newest) {
        return Err(Error::Input(format!(
            "Delta table {} has no version {version}; its versions are 0 to {}",
            location.url,
            newest.map_or("none".to_string(), |n| n.to_string())
        )));
    }
    let table = open(location, Some(version))
        .await?
        .ok_or_else(|| Error::Input(format!("{} is not a Delta table", location.url)))?;
    table
        .update_datafusion_session(&ctx.state())
        .map_err(|e| delta_error("cannot read", location, e))?;
    let provider = table.table_provider().await?;
    let _ = ctx.deregister_table(name)?;
    ctx.register_table(name, provider)?;
    Ok(())
}

/// The newest version of the Delta table at `location`, if it is one.
pub async fn latest_version(location: &DeltaLocation) -> Result<Option<u64>> {
    Ok(open(location, None).await?.and_then(|t| t.version()))
}

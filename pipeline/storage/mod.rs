//! Output and input roots (docs/models.md §2): a local folder, the default, or an
//! object-store prefix such as `s3://bucket/prefix` (S3, MinIO and other
//! S3-compatible stores).
//!
//! A run sees one [`Root`] whatever the medium: it stages tables in a
//! local folder, then asks the root to publish them, to say whether a table
//! has ever been published, to make it queryable, and to hold the run lock.
//! Local roots publish with an atomic directory exchange (`local.rs`); object
//! stores have no directory rename, so they publish data files under unique
//! names and then one small `_SUCCESS` manifest (`object.rs`).

#[cfg(feature = "delta")]
pub mod delta;
#[cfg(unix)]
pub mod in_place;
pub mod local;
pub mod location;
pub mod lock;
pub mod marker;
pub mod object;
pub mod register;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::prelude::SessionContext;
use url::Url;

pub use local::{Layout, SUCCESS_MARKER, publish_dir, write_atomic};
pub use location::{StoreRegistry, object_store_for, parse_location};
pub use lock::{LOCK_DIR, Lease, LockHolder, host_name};
pub use marker::{InputPart, Marker};
pub use object::ObjectRoot;
pub use register::{parquet_listing, register_dir, register_dir_as, register_url};

use crate::error::{Error, Result};

/// Where a run publishes.
#[derive(Debug, Clone)]
pub enum Root {
    Local(Layout),
    Object(ObjectRoot),
}

impl Root {
    /// Open the root named by `--output` (a path or an `s3://` URL). No I/O yet.
    pub fn open(location: &Path) -> Result<Root> {
        match parse_location(location)? {
            None => {
                let text = location.to_string_lossy();
                let path = text
                    .strip_prefix("file://")
                    .map_or_else(|| location.to_path_buf(), PathBuf::from);
                Ok(Root::Local(Layout::new(path)))
            }
            Some(url) => Ok(Root::Object(ObjectRoot::new(url)?)),
        }
    }

    /// The root as the user wrote it, for messages and run_results.json.
    pub fn display(&self) -> String {
        match self {
            Root::Local(l) => l.root.display().to_string(),
            Root::Object(o) => o.url().to_string(),
        }
    }

    /// Local folder where a run stages its tables before publishing: inside
    /// the root for local roots (so publishing is a rename on one
    /// filesystem), in a private folder under the system temp folder for
    /// object stores.
    pub fn staging_root(&self) -> Result<PathBuf> {
        match self {
            Root::Local(l) => Ok(l.staging_root()),
            Root::Object(o) => o.staging_root(),
        }
    }

    /// Make the object store reachable from SQL (`s3://…` table paths).
    pub fn register_store(&self, ctx: &SessionContext) {
        if let Root::Object(o) = self {
            // DataFusion keys stores by scheme and bucket; the path part is ignored.
            ctx.register_object_store(o.url(), o.store());
        }
    }

    /// Take the run lock (a lease renewed while the run lasts, `lock.rs`),
    /// or fail at once naming the run that holds it.
    pub async fn lock(&self, holder: LockHolder, timeout: std::time::Duration) -> Result<Lease> {
        let shown = self.display();
        match self {
            Root::Local(l) => {
                std::fs::create_dir_all(&l.root)
                    .map_err(|e| Error::io("cannot create output root", &l.root, e))?;
                if l.lock_dir().is_file() {
                    return Err(Error::Config(format!(
                        "{} is the lock file of an earlier medallion version (the lock is now a folder); \
                         delete it once no run of that version is going",
                        l.lock_dir().display()
                    )));
                }
                let store = object_store::local::LocalFileSystem::new_with_prefix(&l.root)?;
                let dir = object_store::path::Path::from(LOCK_DIR);
                Lease::acquire(
                    Arc::new(store),
                    dir,
                    &shown,
                    Some(l.lock_dir()),
                    holder,
                    timeout,
                )
                .await
            }
            Root::Object(o) => {
                Lease::acquire(
                    o.store(),
                    o.child(&[LOCK_DIR]),
                    &shown,
                    None,
                    holder,
                    timeout,
                )
                .await
            }
        }
    }

    /// Replace `<layer>/<table>` with the fully written local folder `staged`.
    /// `layer` is `bronze`, `silver`, `gold` or `_quarantine`. With `spare`
    /// (a local incremental table) the replaced version is kept as the
    /// table's spare (`Layout::spare_dir`); without, a spare left from
    /// before is removed.
    pub async fn publish(
        &self,
        staged: &Path,
        layer: &str,
        table: &str,
        spare: bool,
    ) -> Result<()> {
        match self {
            Root::Local(l) => {
                let spare_dir = l.spare_dir(layer, table);
                if spare {
                    return publish_dir(staged, &l.table_dir(layer, table), Some(&spare_dir));
                }
                publish_dir(staged, &l.table_dir(layer, table), None)?;
                // Published already: a spare left from before only costs disk.
                if spare_dir.exists()
                    && let Err(e) = std::fs::remove_dir_all(&spare_dir)
                {
                    tracing::warn!(path = %spare_dir.display(), error = %e, "Spare version not removed.");
                }
                Ok(())
            }
            Root::Object(o) => o.publish(staged, layer, table).await,
        }
    }

    /// Publish the staged local folder `staged` as a new version of the
    /// Delta table `<layer>/<table>` (`delta.rs`): one commit, then the
    /// `_SUCCESS` marker naming its version. A Parquet version published
    /// there before (the format changed) is removed first; a run killed
    /// just then leaves no table, and the next run builds it.
    #[cfg(feature = "delta")]
    pub async fn publish_delta(
        &self,
        ctx: &SessionContext,
        staged: &Path,
        layer: &str,
        table: &str,
        properties: &datafusion::parquet::file::properties::WriterProperties,
    ) -> Result<()> {
        let marker_path = staged.join(SUCCESS_MARKER);
        let staged_marker = Marker::parse(
            &std::fs::read(&marker_path)
                .map_err(|e| Error::io("cannot read marker", &marker_path, e))?,
            &marker_path.display().to_string(),
        )?;
        if let Some(previous) = self.marker(layer, table).await?
            && previous.delta_version.is_none()
        {
            self.remove_folder(&format!("{layer}/{table}")).await?;
        }
        if let Root::Local(l) = self {
            // delta-rs opens a local table only where its folder exists.
            let dir = l.table_dir(layer, table);
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::io("cannot create table folder", &dir, e))?;
        }
        let location = self.delta_location(layer, table)?;
        let committed =
            delta::commit(ctx, staged, &location, &staged_marker.run_id, properties).await?;
        let marker = Marker {
            files: Vec::new(),
            delta_version: Some(committed.version),
            ..staged_marker
        };
        self.write_file(
            &format!("{layer}/{table}/{SUCCESS_MARKER}"),
            serde_json::to_vec_pretty(&marker)?,
        )
        .await?;
        let _ = std::fs::remove_dir_all(staged);
        Ok(())
    }

    /// The URL and store of the Delta table `<layer>/<table>`.
    #[cfg(feature = "delta")]
    pub fn delta_location(&self, layer: &str, table: &str) -> Result<delta::DeltaLocation> {
        match self {
            Root::Local(l) => {
                let dir = std::path::absolute(l.table_dir(layer, table))
                    .map_err(|e| Error::io("cannot resolve", l.table_dir(layer, table), e))?;
                let url = Url::from_directory_path(&dir).map_err(|()| {
                    Error::Config(format!("{} cannot be written as a URL", dir.display()))
                })?;
                Ok(delta::DeltaLocation {
                    url,
                    store: Arc::new(object_store::local::LocalFileSystem::new()),
                })
            }
            Root::Object(o) => Ok(delta::DeltaLocation {
                url: Url::parse(&format!("{}/", o.object_url(&o.table_path(layer, table))))
                    .map_err(|e| Error::Config(format!("table URL: {e}")))?,
                store: o.store(),
            }),
        }
    }

    /// Register the Delta table `<layer>/<table>` at `version` (time
    /// travel, `medallion query --version`) as `name`.
    pub async fn register_version(
        &self,
        ctx: &SessionContext,
        name: &str,
        layer: &str,
        table: &str,
        version: u64,
    ) -> Result<()> {
        let marker = self.marker(layer, table).await?;
        if marker.as_ref().and_then(|m| m.delta_version).is_none() {
            return Err(Error::Input(format!(
                "table {table} is not a Delta table, so it has no versions to travel to; \
                 publish it with table_format = \"delta\" first"
            )));
        }
        self.register_delta(ctx, name, layer, table, version).await
    }

    /// Register `version` of the Delta table `<layer>/<table>` as `name`.
    async fn register_delta(
        &self,
        ctx: &SessionContext,
        name: &str,
        layer: &str,
        table: &str,
        version: u64,
    ) -> Result<()> {
        #[cfg(feature = "delta")]
        {
            delta::register(ctx, name, &self.delta_location(layer, table)?, version).await
        }
        #[cfg(not(feature = "delta"))]
        {
            let _ = (ctx, name, layer, table, version);
            Err(Error::Config(DELTA_FEATURE.into()))
        }
    }

    /// Has `<layer>/<table>` a published version?
    pub async fn is_published(&self, layer: &str, table: &str) -> Result<bool> {
        match self {
            Root::Local(l) => Ok(l.table_dir(layer, table).join(SUCCESS_MARKER).exists()),
            Root::Object(o) => o.is_published(layer, table).await,
        }
    }

    /// Register the published version of `<layer>/<table>` under `name`.
    /// On object stores only the files the manifest lists are read.
    pub async fn register(
        &self,
        ctx: &SessionContext,
        name: &str,
        layer: &str,
        table: &str,
    ) -> Result<()> {
        // A Delta table's marker names the version to read.
        if matches!(layer, "silver" | "gold")
            && let Some(version) = self
                .marker(layer, table)
                .await?
                .and_then(|m| m.delta_version)
        {
            return self.register_delta(ctx, name, layer, table, version).await;
        }
        match self {
            Root::Local(l) => register_dir(ctx, name, &l.table_dir(layer, table)).await,
            Root::Object(o) => o.register(ctx, name, layer, table).await,
        }
    }

    /// Register the published `<layer>/<table>` as `name`, or say which of
    /// its files cannot be read and how to mend it, so that a caller can
    /// leave that one table out and go on with the others.
    pub async fn register_readable(
        &self,
        ctx: &SessionContext,
        name: &str,
        layer: &str,
        table: &str,
    ) -> std::result::Result<(), String> {
        let Err(error) = self.register(ctx, name, layer, table).await else {
            return Ok(());
        };
        Err(self.damage(layer, table).unwrap_or_else(|| {
            format!(
                "table {table} cannot be read ({}); re-run `medallion run --select {table} --full-refresh` to republish it",
                crate::error::error_chain(&error)
            )
        }))
    }

    /// Which file of a published local table is damaged, as a message
    /// naming it; `None` when every file reads (or the root is remote).
    pub fn damage(&self, layer: &str, table: &str) -> Option<String> {
        let Root::Local(l) = self else { return None };
        let (file, why) = local::unreadable_parquet(&l.table_dir(layer, table))?;
        Some(format!(
            "table {table} cannot be read: {} is not a readable Parquet file ({why}); \
             re-run `medallion run --select {table} --full-refresh` to republish it",
            file.display()
        ))
    }

    /// The first damaged file among some tables of any layer, as
    /// [`Root::damage`] names it. Tables are registered from one footer, so
    /// a file broken elsewhere shows only when a query reads it: a failed
    /// read asks this which file to name.
    pub fn damage_among<'a>(&self, tables: impl IntoIterator<Item = &'a str>) -> Option<String> {
        tables.into_iter().find_map(|table| {
            crate::layer::Layer::ALL
                .iter()
                .find_map(|layer| self.damage(layer.as_str(), table))
        })
    }

    /// Published tables of a layer, by name.
    pub async fn published_tables(&self, layer: &str) -> Result<Vec<String>> {
        match self {
            Root::Local(l) => {
                let dir = l.root.join(layer);
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    return Ok(Vec::new());
                };
                let mut names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.path().join(SUCCESS_MARKER).exists())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                Ok(names)
            }
            Root::Object(o) => o.published_tables(layer).await,
        }
    }

    /// Rows of the published version of `<layer>/<table>`, from its
    /// `_SUCCESS` marker or manifest; `None` when never published.
    pub async fn published_rows(&self, layer: &str, table: &str) -> Result<Option<u64>> {
        Ok(self.marker(layer, table).await?.map(|m| m.rows))
    }

    /// The marker (manifest) of the published version of `<layer>/<table>`;
    /// `None` when never published.
    pub async fn marker(&self, layer: &str, table: &str) -> Result<Option<Marker>> {
        let relative = format!("{layer}/{table}/{SUCCESS_MARKER}");
        let Some(bytes) = self.read_file(&relative).await? else {
            return Ok(None);
        };
        Marker::parse(&bytes, &format!("{}/{relative}", self.display())).map(Some)
    }

    /// Read a small file (run results) at `relative` under the root; `None`
    /// when there is none.
    pub async fn read_file(&self, relative: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Root::Local(l) => {
                let path = l.root.join(relative);
                match std::fs::read(&path) {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::io("cannot read", &path, e)),
                }
            }
            Root::Object(o) => o.read_file(relative).await,
        }
    }

    /// Names of the folders directly under `relative` (`_runs`).
    pub async fn list_folders(&self, relative: &str) -> Result<Vec<String>> {
        match self {
            Root::Local(l) => {
                let dir = l.root.join(relative);
                let entries = match std::fs::read_dir(&dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(e) => return Err(Error::io("cannot list", &dir, e)),
                };
                Ok(entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect())
            }
            Root::Object(o) => o.list_folders(relative).await,
        }
    }

    /// Delete the folder `relative` and everything in it.
    pub async fn remove_folder(&self, relative: &str) -> Result<()> {
        match self {
            Root::Local(l) => {
                let dir = l.root.join(relative);
                std::fs::remove_dir_all(&dir).map_err(|e| Error::io("cannot remove", &dir, e))
            }
            Root::Object(o) => o.remove_prefix(relative).await,
        }
    }

    /// Write a small file (run results) at `relative` under the root, atomically.
    pub async fn write_file(&self, relative: &str, bytes: Vec<u8>) -> Result<()> {
        match self {
            Root::Local(l) => write_atomic(&l.root.join(relative), &bytes),
            Root::Object(o) => o.write_file(relative, bytes).await,
        }
    }
}

/// Why a build without the `delta` feature cannot read a Delta table.
#[cfg(not(feature = "delta"))]
const DELTA_FEATURE: &str = "this table is a Delta table, and this medallion was built without \
     the `delta` feature: cargo build --release (the feature is on by default)";

/// Copy every object under an input URL into `local` (the CSV reader and the
/// quarantine need local files with line positions). Returns `local`.
pub async fn download_input(url: &Url, local: &Path) -> Result<PathBuf> {
    object::download_prefix(url, local).await?;
    Ok(local.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_map_to_roots() {
        assert!(matches!(
            Root::open(Path::new("artifacts")).unwrap(),
            Root::Local(_)
        ));
        assert!(matches!(
            Root::open(Path::new("file:///tmp/x")).unwrap(),
            Root::Local(l) if l.root == Path::new("/tmp/x")
        ));
        let err = Root::open(Path::new("gs://bucket/x"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unsupported scheme `gs`"), "{err}");
        let err = Root::open(Path::new("s3:///x")).unwrap_err().to_string();
        assert!(err.contains("needs a bucket"), "{err}");
    }
}

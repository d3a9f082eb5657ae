//! An output root on an object store (S3, MinIO): publishing without
//! directory renames, the delta-rs way.
//!
//! Publishing a table: (1) upload the staged data files under names unique
//! to the run (`part-00000-<run_id>.parquet`); (2) write the table's
//! `_SUCCESS` manifest last, in one PUT, listing the files of the new
//! version; (3) delete the files the manifest no longer lists. A PUT is
//! atomic on S3, so a reader that follows the manifest (medallion itself,
//! `query`, and the reader recipes of docs/operations.md) sees the old version or the new
//! one, never a mix. A run killed before (2) leaves the old manifest in
//! place; its stray uploads are deleted by the next publish of that table.
//!
//! The run lock is a lease under `_lock/` (see `lock.rs`), taken with
//! conditional PUTs (`If-None-Match: *`) so that exactly one of two racing
//! runs gets it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::datasource::listing::{ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::options::ReadOptions;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::io::AsyncWriteExt;
use url::Url;

use super::local::SUCCESS_MARKER;
use super::location::object_store_for;
use super::marker::Marker;
use crate::error::{Error, Result};

#[derive(Clone)]
pub struct ObjectRoot {
    url: Url,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
}

impl std::fmt::Debug for ObjectRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectRoot")
            .field("url", &self.url.as_str())
            .finish()
    }
}

impl ObjectRoot {
    pub fn new(url: Url) -> Result<ObjectRoot> {
        let store = object_store_for(&url)?;
        let prefix = ObjectPath::from_url_path(url.path())
            .map_err(|e| Error::Config(format!("{url}: bad object path: {e}")))?;
        Ok(ObjectRoot { url, store, prefix })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    /// A local staging folder per root, so that two roots never share one,
    /// inside `<temp>/medallion-<uid>/`, a folder only this user may enter
    /// (refused if it exists with other owners or wider permissions: another
    /// user could read or plant staged tables there).
    pub fn staging_root(&self) -> Result<PathBuf> {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.url.as_str().bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Ok(private_temp_dir()?.join(format!("staging-{h:016x}")))
    }

    pub(crate) fn child(&self, parts: &[&str]) -> ObjectPath {
        parts
            .iter()
            .flat_map(|p| p.split('/'))
            .filter(|p| !p.is_empty())
            .fold(self.prefix.clone(), |path, part| path.join(part))
    }

    pub(crate) fn table_path(&self, layer: &str, table: &str) -> ObjectPath {
        self.child(&[layer, table])
    }

    /// Full URL of an object, for DataFusion listing tables.
    pub(crate) fn object_url(&self, path: &ObjectPath) -> String {
        format!(
            "{}://{}/{}",
            self.url.scheme(),
            self.url.host_str().unwrap_or_default(),
            path
        )
    }

    /// Names of the "folders" (common prefixes) directly under `relative`.
    pub async fn list_folders(&self, relative: &str) -> Result<Vec<String>> {
        let prefix = self.child(&[relative]);
        let listing = self.store.list_with_delimiter(Some(&prefix)).await?;
        Ok(listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }

    /// Delete every object under `relative`.
    pub async fn remove_prefix(&self, relative: &str) -> Result<()> {
        let prefix = self.child(&[relative]);
        let objects: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
        for meta in objects {
            self.store.delete(&meta.location).await?;
        }
        Ok(())
    }

    async fn manifest(&self, layer: &str, table: &str) -> Result<Option<Marker>> {
        let path = self.table_path(layer, table).join(SUCCESS_MARKER);
        match self.store.get(&path).await {
            Ok(r) => {
                let bytes = r.bytes().await?;
                let manifest = serde_json::from_slice::<Marker>(&bytes).map_err(|e| {
                    Error::Input(format!(
                        "{}: not a medallion manifest ({e}); re-run the model with --full-refresh to republish it",
                        self.object_url(&path)
                    ))
                })?;
                Ok(Some(manifest))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn is_published(&self, layer: &str, table: &str) -> Result<bool> {
        Ok(self.manifest(layer, table).await?.is_some())
    }

    pub async fn publish(&self, staged: &Path, layer: &str, table: &str) -> Result<()> {
        let marker = staged.join(SUCCESS_MARKER);
        let staged_manifest = Marker::parse(
            &std::fs::read(&marker).map_err(|e| Error::io("cannot read marker", &marker, e))?,
            &marker.display().to_string(),
        )?;
        let run_id = &staged_manifest.run_id;
        let table_path = self.table_path(layer, table);
        // (1) Data files under names no other version uses.
        let mut files = Vec::new();
        for name in &staged_manifest.files {
            let unique = match name.strip_suffix(".parquet") {
                Some(stem) => format!("{stem}-{run_id}.parquet"),
                None => format!("{name}-{run_id}"),
            };
            upload_file(
                &self.store,
                &staged.join(name),
                &table_path.clone().join(unique.as_str()),
            )
            .await?;
            files.push(unique);
        }
        let manifest = Marker {
            files,
            ..staged_manifest
        };
        self.commit(&table_path, manifest).await?;
        let _ = std::fs::remove_dir_all(staged);
        Ok(())
    }

    pub(crate) async fn delete_prefix(&self, prefix: &ObjectPath) -> Result<()> {
        let paths: Vec<ObjectPath> = self
            .store
            .list(Some(prefix))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await?;
        for path in paths {
            self.store.delete(&path).await?;
        }
        Ok(())
    }

    /// Steps (2) and (3) of publishing: the manifest listing its files,
    /// then the removal of every file it does not list.
    pub(crate) async fn commit(&self, table_path: &ObjectPath, manifest: Marker) -> Result<()> {
        // (2) The manifest, in one PUT: the switch readers follow.
        let files = manifest.files.clone();
        self.store
            .put(
                &table_path.clone().join(SUCCESS_MARKER),
                PutPayload::from(serde_json::to_vec_pretty(&manifest)?),
            )
            .await?;
        // (3) Everything the manifest does not list: old versions, strays of killed runs.
        self.remove_unlisted(table_path, &files).await
    }

    /// Step (3) alone for a table kept as published (skipped unchanged):
    /// the uploads of a run killed before its manifest, which no later
    /// publish of the table would otherwise remove. Nothing without a manifest.
    pub async fn sweep(&self, layer: &str, table: &str) -> Result<()> {
        match self.manifest(layer, table).await? {
            Some(manifest) => {
                self.remove_unlisted(&self.table_path(layer, table), &manifest.files)
                    .await
            }
            None => Ok(()),
        }
    }

    /// Delete every object of the table but its manifest and `files`.
    async fn remove_unlisted(&self, table_path: &ObjectPath, files: &[String]) -> Result<()> {
        let stale: Vec<ObjectPath> = self
            .store
            .list(Some(table_path))
            .map_ok(|meta| meta.location)
            .try_filter(|loc| {
                let name = loc.filename().unwrap_or_default();
                let keep = name == SUCCESS_MARKER || files.iter().any(|f| f == name);
                futures::future::ready(!keep)
            })
            .try_collect()
            .await?;
        for path in stale {
            self.store.delete(&path).await?;
        }
        Ok(())
    }

    pub async fn register(
        &self,
        ctx: &SessionContext,
        name: &str,
        layer: &str,
        table: &str,
    ) -> Result<()> {
        let manifest = self.manifest(layer, table).await?.ok_or_else(|| {
            Error::Input(format!(
                "{} has no published version",
                self.object_url(&self.table_path(layer, table))
            ))
        })?;
        let table_path = self.table_path(layer, table);
        let urls = manifest
            .files
            .iter()
            .map(|f| ListingTableUrl::parse(self.object_url(&table_path.clone().join(f.as_str()))))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let state = ctx.state();
        let options = ParquetReadOptions::default()
            .to_listing_options(&ctx.copied_config(), ctx.copied_table_options());
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .infer_schema(&state)
            .await?;
        let _ = ctx.deregister_table(name)?;
        let cache = ctx.runtime_env().cache_manager.get_file_statistic_cache();
        ctx.register_table(
            name,
            Arc::new(ListingTable::try_new(config)?.with_cache(cache)),
        )?;
        Ok(())
    }

    pub async fn published_tables(&self, layer: &str) -> Result<Vec<String>> {
        let listing = self
            .store
            .list_with_delimiter(Some(&self.child(&[layer])))
            .await?;
        let mut names = Vec::new();
        for dir in listing.common_prefixes {
            if let Some(table) = dir.filename()
                && self.is_published(layer, table).await?
            {
                names.push(table.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    pub async fn read_file(&self, relative: &str) -> Result<Option<Vec<u8>>> {
        match self.store.get(&self.child(&[relative])).await {
            Ok(found) => Ok(Some(found.bytes().await?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn write_file(&self, relative: &str, bytes: Vec<u8>) -> Result<()> {
        self.store
            .put(&self.child(&[relative]), PutPayload::from(bytes))
            .await?;
        Ok(())
    }
}

/// Stream a local file to the store: one PUT when small, multipart when large.
async fn upload_file(store: &Arc<dyn ObjectStore>, from: &Path, to: &ObjectPath) -> Result<()> {
    let mut file = tokio::fs::File::open(from)
        .await
        .map_err(|e| Error::io("cannot open staged file", from, e))?;
    let mut writer = object_store::buffered::BufWriter::new(Arc::clone(store), to.clone());
    tokio::io::copy(&mut file, &mut writer)
        .await
        .map_err(|e| Error::io("cannot upload staged file", from, e))?;
    writer
        .shutdown()
        .await
        .map_err(|e| Error::io("cannot upload staged file", from, e))?;
    Ok(())
}

/// `<temp>/medallion-<uid>`, created with mode 0700 and checked to be ours.
#[cfg(unix)]
fn private_temp_dir() -> Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir = std::env::temp_dir().join(format!("medallion-{uid}"));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io("cannot create private staging folder", &dir, e)),
    }
    let meta = std::fs::symlink_metadata(&dir)
        .map_err(|e| Error::io("cannot inspect private staging folder", &dir, e))?;
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(Error::Config(format!(
            "staging folder {} is not a folder private to this user (owner uid {}, mode {:o}); remove it or set TMPDIR to a private folder",
            dir.display(),
            meta.uid(),
            meta.mode() & 0o777
        )));
    }
    Ok(dir)
}

#[cfg(not(unix))]
fn private_temp_dir() -> Result<PathBuf> {
    Ok(std::env::temp_dir().join("medallion"))
}

/// Copy every object under `url` to the same relative place under `local`.
pub async fn download_prefix(url: &Url, local: &Path) -> Result<()> {
    let store = object_store_for(url)?;
    let prefix = ObjectPath::from_url_path(url.path())
        .map_err(|e| Error::Config(format!("{url}: bad object path: {e}")))?;
    let mut listing = store.list(Some(&prefix));
    let mut count = 0usize;
    while let Some(meta) = listing.next().await {
        let meta = meta?;
        let relative: Vec<String> = meta
            .location
            .prefix_match(&prefix)
            .map(|parts| parts.map(|p| p.as_ref().to_string()).collect())
            .unwrap_or_default();
        if relative.is_empty() {
            continue;
        }
        let dest = relative
            .iter()
            .fold(local.to_path_buf(), |p, part| p.join(part));
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| Error::io("cannot create folder", parent, e))?;
        }
        let mut stream = store.get(&meta.location).await?.into_stream();
        let mut file = tokio::fs::File::create(&dest)
            .await
            .map_err(|e| Error::io("cannot create file", &dest, e))?;
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk?)
                .await
                .map_err(|e| Error::io("cannot write file", &dest, e))?;
        }
        file.flush()
            .await
            .map_err(|e| Error::io("cannot write file", &dest, e))?;
        count += 1;
    }
    if count == 0 {
        return Err(Error::Input(format!(
            "input {url} holds no files; upload the CSV sources there or pass a local --input"
        )));
    }
    tracing::info!(input = %url, files = count, local = %local.display(), "Input downloaded.");
    Ok(())
}

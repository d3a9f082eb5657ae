//! What changed in a source's input files since its published version
//! (docs/operations.md, "Nightly runs"): which files are new, changed,
//! removed or unchanged, which published parts can be kept, and the
//! source's fingerprint.
//!
//! Each input file lands as its own part, named by a key that digests the
//! declaration, the file's path and its content hash. A part is kept only
//! when both the published bronze table and its quarantine list its key,
//! so a run killed between publishing the two is finished by the next one.
//! Content hashes are cached in `_state/files/<source>.json` by path, size
//! and modification time, so unchanged files are not read again.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::context::Run;
use super::fingerprint::Digest;
use super::results::FileChanges;
use crate::error::{Error, Result};
use crate::ingest::{InputFile, content_hash};
use crate::storage::{InputPart, Marker, Root, marker::part_name};

/// What a run does with one source.
pub struct SourcePlan {
    /// The fingerprint of the version the current files make.
    pub fingerprint: String,
    /// Published inputs whose parts are kept as they are.
    pub keep: Vec<InputPart>,
    /// Files to read, each with the part key it is written under.
    pub read: Vec<(InputFile, InputPart)>,
    pub changes: FileChanges,
    /// Files the published version holds that are gone now.
    pub removed: Vec<String>,
    /// The published bronze and quarantine versions are exactly the current
    /// files: nothing to do.
    pub unchanged: bool,
    /// The cache of content hashes after this run.
    cache: Vec<CachedHash>,
}

/// One entry of `_state/files/<source>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedHash {
    file: String,
    size: u64,
    modified_ns: i128,
    hash: String,
}

fn cache_path(source: &str) -> String {
    format!("_state/files/{source}.json")
}

/// Compare the current `files` of `source` (bronze table `table`) with its
/// published versions.
pub async fn plan_source(
    run: &Run,
    table: &str,
    source: &str,
    declared_in: &Path,
    files: Vec<InputFile>,
) -> Result<SourcePlan> {
    let declaration = std::fs::read(declared_in)
        .map_err(|e| Error::io("cannot read source declaration", declared_in, e))?;
    let mut declared = Digest::new("declaration");
    declared.add(&declaration);
    let declared = declared.finish();
    let cached: HashMap<String, CachedHash> = match run.root.read_file(&cache_path(source)).await {
        // A cache that cannot be read is rebuilt: it only saves reading files.
        Ok(Some(bytes)) => serde_json::from_slice::<Vec<CachedHash>>(&bytes)
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.file.clone(), c))
            .collect(),
        _ => HashMap::new(),
    };
    let hashed = tokio::task::spawn_blocking(move || hash_files(files, &cached)).await??;
    let (bronze, quarantine) = if run.full_refresh {
        (None, None)
    } else {
        // A marker that cannot be read keeps nothing: every file is read.
        (
            run.root.marker("bronze", table).await.ok().flatten(),
            run.root.marker("_quarantine", source).await.ok().flatten(),
        )
    };
    let mut fingerprint = Digest::new("bronze");
    fingerprint.add(declared.as_bytes());
    let mut read = Vec::new();
    let mut keep = Vec::new();
    let mut cache = Vec::new();
    let published: BTreeMap<&str, &InputPart> = bronze
        .iter()
        .flat_map(|m| m.inputs.iter())
        .map(|p| (p.file.as_str(), p))
        .collect();
    let mut changes = FileChanges::default();
    for (file, entry) in hashed {
        let mut key = Digest::new("part");
        key.add(declared.as_bytes())
            .add(file.name.as_bytes())
            .add(entry.hash.as_bytes());
        let part = InputPart {
            file: file.name.clone(),
            size: entry.size,
            hash: entry.hash.clone(),
            key: key.finish(),
            rows: 0,
            quarantined: 0,
            quarantined_lines: 0,
        };
        fingerprint
            .add(part.file.as_bytes())
            .add(part.hash.as_bytes());
        match published.get(part.file.as_str()) {
            None => changes.new += 1,
            Some(p) if p.hash != part.hash => changes.changed += 1,
            Some(_) => changes.unchanged += 1,
        }
        match reusable(
            &run.root,
            table,
            source,
            &part.key,
            bronze.as_ref(),
            quarantine.as_ref(),
        ) {
            Some(kept) => keep.push(kept),
            None => read.push((file, part)),
        }
        cache.push(entry);
    }
    let current: std::collections::HashSet<&str> = cache.iter().map(|c| c.file.as_str()).collect();
    let removed: Vec<String> = published
        .keys()
        .filter(|f| !current.contains(**f))
        .map(|f| f.to_string())
        .collect();
    changes.removed = removed.len();
    let fingerprint = fingerprint.finish();
    let unchanged = [bronze.as_ref(), quarantine.as_ref()]
        .iter()
        .all(|m| m.and_then(|m| m.fingerprint.as_deref()) == Some(fingerprint.as_str()))
        && read.is_empty();
    Ok(SourcePlan {
        fingerprint,
        keep,
        read,
        changes,
        removed,
        unchanged,
        cache,
    })
}

/// The published input with `key`, when both tables hold it and its parts
/// are there to keep. Only on a local root: on an object store the staged
/// folder is local and its data tests must see every row, so every file is
/// read again.
fn reusable(
    root: &Root,
    table: &str,
    source: &str,
    key: &str,
    bronze: Option<&Marker>,
    quarantine: Option<&Marker>,
) -> Option<InputPart> {
    let Root::Local(layout) = root else {
        return None;
    };
    let find = |m: Option<&Marker>| m?.inputs.iter().find(|p| p.key == key).cloned();
    let (kept, also) = (find(bronze)?, find(quarantine)?);
    let part = part_name(key);
    let present = |dir: std::path::PathBuf, rows: u64| rows == 0 || dir.join(&part).is_file();
    (kept == also
        && present(layout.table_dir("bronze", table), kept.rows)
        && present(layout.quarantine_dir(source), kept.quarantined))
    .then_some(kept)
}

/// Size, modification time and content hash of each file; the hash comes
/// from `cached` when the size and time match.
fn hash_files(
    files: Vec<InputFile>,
    cached: &HashMap<String, CachedHash>,
) -> Result<Vec<(InputFile, CachedHash)>> {
    files
        .into_iter()
        .map(|file| {
            let meta = std::fs::metadata(&file.path)
                .map_err(|e| Error::io("cannot read input file", &file.path, e))?;
            let modified_ns = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i128);
            let size = meta.len();
            let hash = match cached.get(&file.name) {
                Some(c) if c.size == size && c.modified_ns == modified_ns && modified_ns != 0 => {
                    c.hash.clone()
                }
                _ => content_hash(&file.path)?,
            };
            let entry = CachedHash {
                file: file.name.clone(),
                size,
                modified_ns,
                hash,
            };
            Ok((file, entry))
        })
        .collect()
}

impl SourcePlan {
    /// Keep the cache of content hashes for the next run. Only saves work,
    /// so a failure is logged, not fatal.
    pub async fn save_cache(&self, root: &Root, source: &str) {
        let written = match serde_json::to_vec_pretty(&self.cache) {
            Ok(body) => root.write_file(&cache_path(source), body).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = written {
            tracing::warn!(source, error = %e, "Content hashes not recorded; the next run reads the files again to hash them.");
        }
    }
}

//! `_SUCCESS`, the marker of a table version: written last into a staged
//! local folder, published with it (the manifest readers follow on an
//! object store). Besides the run, rows and data files it records what the
//! version was built from, so a later run can tell whether rebuilding it
//! would change anything (docs/operations.md, "Nightly runs").

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::local::SUCCESS_MARKER;
use crate::error::{Error, Result};

/// One table version.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Marker {
    pub run_id: String,
    #[serde(default)]
    pub rows: u64,
    /// Data files of this version, relative to the table folder.
    pub files: Vec<String>,
    /// Digest of everything the version was built from (code, settings,
    /// input versions); two versions with one fingerprint hold the same rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// A Delta table's version (`table_format = "delta"`): its data files
    /// are the ones that version of `_delta_log/` lists, not `files`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_version: Option<u64>,
    /// Bronze and quarantine tables: the input files the version holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<InputPart>,
    /// An incremental model's version: what it was built from, date by date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<Partitioned>,
}

/// What an incremental (date-partitioned) table version was built from,
/// so that the next run can tell which dates to recompute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Partitioned {
    /// Digest of the model without its inputs and as-of date: SQL, tests,
    /// variables, format. Another digest means a full rebuild.
    pub base: String,
    /// The as-of date the version was published for (`YYYY-MM-DD`).
    pub as_of: String,
    /// Each input table as it was read.
    pub inputs: std::collections::BTreeMap<String, InputState>,
    /// The run whose folder `_state/future/<table>/<run_id>/` holds the
    /// partitions dated after `as_of` (computed, not published), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub future: Option<String>,
    /// Rows per date (`YYYY-MM-DD`), published or waiting.
    #[serde(default)]
    pub rows: std::collections::BTreeMap<String, u64>,
}

/// One input of an incremental model, as it was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputState {
    /// A bronze table: the keys of its per-file parts.
    Parts(Vec<String>),
    /// An incremental table: each partition's files (their names change
    /// whenever the partition is rewritten).
    Partitions(std::collections::BTreeMap<String, Vec<String>>),
    /// Any other table: its fingerprint.
    Version(Option<String>),
}

/// One input file in a bronze (and its quarantine) table version. Its rows
/// are the part `<key>.parquet` of each table (absent when it has none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputPart {
    /// Path under the input folder, as in `_source_file`.
    pub file: String,
    pub size: u64,
    /// XXH3-128 of the file's bytes, hex.
    pub hash: String,
    /// Digest of the declaration, the file name and `hash`: the name of
    /// the file's parts.
    pub key: String,
    pub rows: u64,
    pub quarantined: u64,
    pub quarantined_lines: u64,
}

impl InputPart {
    /// The file name of this input's part in a table folder.
    pub fn part_name(&self) -> String {
        part_name(&self.key)
    }
}

/// The part file holding the rows of the input file with `key`.
pub fn part_name(key: &str) -> String {
    format!("{key}.parquet")
}

impl Marker {
    /// A marker for the staged local folder `dir`, listing its Parquet files.
    pub fn for_dir(run_id: &str, dir: &Path, rows: u64) -> Result<Marker> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io("cannot create staging folder", dir, e))?;
        let files = parquet_files(dir)?;
        Ok(Marker {
            run_id: run_id.to_string(),
            rows,
            files,
            ..Marker::default()
        })
    }

    /// Write the marker into `dir`, last, as the staged version's seal.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::write(dir.join(SUCCESS_MARKER), serde_json::to_vec_pretty(self)?)
            .map_err(|e| Error::io("cannot write marker", dir, e))
    }

    /// Parse a marker; `what` names it in the error.
    pub fn parse(bytes: &[u8], what: &str) -> Result<Marker> {
        serde_json::from_slice(bytes).map_err(|e| {
            Error::Input(format!(
                "{what}: not a medallion marker ({e}); re-run the model with --full-refresh to republish it"
            ))
        })
    }
}

/// The Parquet files under `dir`, relative to it and sorted: a partitioned
/// table's `<column>=<value>/` folders included, `_`/`.` names skipped.
pub fn parquet_files(dir: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    let mut folders = vec![(dir.to_path_buf(), String::new())];
    while let Some((folder, prefix)) = folders.pop() {
        let entries = std::fs::read_dir(&folder)
            .map_err(|e| Error::io("cannot list table folder", &folder, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(['_', '.']) {
                continue;
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                folders.push((entry.path(), format!("{prefix}{name}/")));
            } else if name.ends_with(".parquet") {
                files.push(format!("{prefix}{name}"));
            }
        }
    }
    files.sort();
    Ok(files)
}

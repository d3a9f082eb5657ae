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
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .map_err(|e| Error::io("cannot list staging folder", dir, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".parquet"))
            .collect();
        files.sort();
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

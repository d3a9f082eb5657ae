//! A local output root: its layout, the atomic publish of a table folder,
//! and atomic writes of small files.
//!
//! Every table is first written under `<root>/_staging/<run_id>/` and becomes
//! visible only through one atomic directory exchange (`renameat2` with
//! `RENAME_EXCHANGE` on Linux), so a reader sees the previous complete version
//! or the new complete one, never a mix. A run killed before that leaves only
//! its staging folder behind, which the next run removes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Name of the marker written into every published table folder.
pub const SUCCESS_MARKER: &str = "_SUCCESS";

/// Paths of one output root.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }

    /// `<root>/<layer>/<table>`, the published table.
    pub fn table_dir(&self, layer: &str, table: &str) -> PathBuf {
        self.root.join(layer).join(table)
    }

    /// `<root>/_state/spare/<layer>/<table>`: the version an incremental
    /// table's last publish replaced, whose partition folders its next
    /// build moves in and brings up to date rather than making new ones.
    pub fn spare_dir(&self, layer: &str, table: &str) -> PathBuf {
        self.root
            .join("_state")
            .join("spare")
            .join(layer)
            .join(table)
    }

    /// `<root>/_quarantine/<source>`.
    pub fn quarantine_dir(&self, source: &str) -> PathBuf {
        self.root.join("_quarantine").join(source)
    }

    /// Staging area of one run; `_`-prefixed so readers of the root skip it.
    pub fn staging_root(&self) -> PathBuf {
        self.root.join("_staging")
    }

    pub fn staging_dir(&self, run_id: &str) -> PathBuf {
        self.staging_root().join(run_id)
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.root.join("_runs")
    }

    /// The run lock's folder (`lock.rs`).
    pub fn lock_dir(&self) -> PathBuf {
        self.root.join(super::lock::LOCK_DIR)
    }
}

/// The first Parquet file under the table folder `dir`, or in one of its
/// `<column>=<value>` partition folders, whose footer cannot be read (a
/// file truncated by a full disk or a bad copy), with the reason.
pub fn unreadable_parquet(dir: &Path) -> Option<(PathBuf, String)> {
    use datafusion::parquet::file::reader::SerializedFileReader;
    let mut files = Vec::new();
    collect_parquet(dir, &mut files);
    files.sort();
    files.into_iter().find_map(|path| {
        let why = match fs::File::open(&path) {
            Ok(file) => SerializedFileReader::new(file).err()?.to_string(),
            Err(e) => e.to_string(),
        };
        Some((path, why))
    })
}

/// The first Parquet file of a table folder (its partition folders
/// included), in name order; `None` for a table without data files.
pub fn first_parquet(dir: &Path) -> Option<PathBuf> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    // Files before folders: an unpartitioned table needs no descent.
    let (files, folders): (Vec<PathBuf>, Vec<PathBuf>) =
        entries.into_iter().partition(|p| !p.is_dir());
    files
        .into_iter()
        .find(|p| p.extension().is_some_and(|x| x == "parquet"))
        .or_else(|| {
            folders
                .iter()
                .filter(|p| is_partition_folder(p))
                .find_map(|p| first_parquet(p))
        })
}

/// A `<column>=<value>` folder of table data (not `_`/`.` staging or state).
fn is_partition_folder(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let name = name.unwrap_or_default();
    name.contains('=') && !name.starts_with(['_', '.'])
}

/// The Parquet files of a table folder and its partition folders; folders
/// starting with `_` or `.` (staging, state) are not table data.
fn collect_parquet(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.is_dir() {
            if is_partition_folder(&path) {
                collect_parquet(&path, files);
            }
        } else if path.extension().is_some_and(|x| x == "parquet") {
            files.push(path);
        }
    }
}

/// Atomically replace `target` with the fully written folder `staged`.
///
/// On return `staged` no longer exists, and the previous version (if any)
/// is gone, or parked as `spare` when one is given (replacing what was
/// there).
pub fn publish_dir(staged: &Path, target: &Path, spare: Option<&Path>) -> Result<()> {
    let parent = target
        .parent()
        .ok_or_else(|| Error::Input(format!("table path {} has no parent", target.display())))?;
    fs::create_dir_all(parent).map_err(|e| Error::io("cannot create output folder", parent, e))?;
    if target.exists() {
        exchange(staged, target)?;
        // `staged` now holds the old version; nobody can reach it any more.
        // The new version is published now: a spare that cannot be kept
        // costs only the next build's speed, so it never fails the publish.
        if let Some(spare) = spare
            && let Err(e) = park(staged, spare)
        {
            tracing::warn!(error = %e, "Replaced version not kept as a spare; it is removed.");
        }
        if staged.exists() {
            fs::remove_dir_all(staged)
                .map_err(|e| Error::io("cannot remove replaced version", staged, e))?;
        }
    } else {
        fs::rename(staged, target).map_err(|e| Error::io("cannot publish table", target, e))?;
    }
    Ok(())
}

/// Move the replaced version `old` to `spare`, over any spare before it.
fn park(old: &Path, spare: &Path) -> Result<()> {
    match fs::remove_dir_all(spare) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("cannot remove the spare version", spare, e)),
    }
    if let Some(parent) = spare.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io("cannot create folder", parent, e))?;
    }
    fs::rename(old, spare).map_err(|e| Error::io("cannot park replaced version", spare, e))
}

/// Swap two directory entries in one system call.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes())
        .map_err(|_| Error::Input(format!("path {} holds a NUL byte", a.display())))?;
    let cb = CString::new(b.as_os_str().as_bytes())
        .map_err(|_| Error::Input(format!("path {} holds a NUL byte", b.display())))?;
    // SAFETY: both pointers are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        // Filesystems without RENAME_EXCHANGE: fall back to two renames.
        Some(libc::EINVAL) | Some(libc::ENOSYS) => two_step_swap(a, b),
        _ => Err(Error::io("cannot publish table", b, err)),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(a: &Path, b: &Path) -> Result<()> {
    two_step_swap(a, b)
}

/// Not atomic for readers (the table is briefly absent), but never mixed.
fn two_step_swap(staged: &Path, target: &Path) -> Result<()> {
    let aside = staged.with_extension("old");
    fs::rename(target, &aside)
        .map_err(|e| Error::io("cannot move old version aside", target, e))?;
    fs::rename(staged, target).map_err(|e| Error::io("cannot publish table", target, e))?;
    fs::rename(&aside, staged).map_err(|e| Error::io("cannot park old version", &aside, e))?;
    Ok(())
}

/// Write `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| Error::io("cannot create folder", parent, e))?;
    let tmp = parent.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let mut file = fs::File::create(&tmp).map_err(|e| Error::io("cannot create file", &tmp, e))?;
    file.write_all(bytes)
        .map_err(|e| Error::io("cannot write file", &tmp, e))?;
    file.sync_all()
        .map_err(|e| Error::io("cannot sync file", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io("cannot rename file into place", path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_data_file_skips_state_folders_and_reads_files_first() {
        let tmp = tempfile::tempdir().unwrap();
        let table = tmp.path().join("silver/t");
        assert_eq!(first_parquet(&table), None, "no folder");
        for file in [
            "_staging/a.parquet",
            ".hidden=1/a.parquet",
            "order_day=2024-01-02/b.parquet",
            "order_day=2024-01-01/_SUCCESS",
            "order_day=2024-01-01/c.parquet",
        ] {
            let path = table.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, b"x").unwrap();
        }
        assert_eq!(
            first_parquet(&table),
            Some(table.join("order_day=2024-01-01/c.parquet"))
        );
        fs::write(table.join("z.parquet"), b"x").unwrap();
        assert_eq!(first_parquet(&table), Some(table.join("z.parquet")));
        let empty = tmp.path().join("gold/e");
        fs::create_dir_all(empty.join("order_day=2024-01-01")).unwrap();
        assert_eq!(first_parquet(&empty), None);
    }

    #[test]
    fn publish_replaces_whole_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("gold/t");
        let staged = tmp.path().join("_staging/r1/t");
        fs::create_dir_all(&staged).unwrap();
        fs::write(staged.join("a.parquet"), b"v1").unwrap();
        publish_dir(&staged, &target, None).unwrap();
        assert_eq!(fs::read(target.join("a.parquet")).unwrap(), b"v1");
        let staged = tmp.path().join("_staging/r2/t");
        fs::create_dir_all(&staged).unwrap();
        fs::write(staged.join("b.parquet"), b"v2").unwrap();
        publish_dir(&staged, &target, None).unwrap();
        assert!(!target.join("a.parquet").exists());
        assert_eq!(fs::read(target.join("b.parquet")).unwrap(), b"v2");
        assert!(!staged.exists());
    }

    #[test]
    fn a_spare_keeps_the_replaced_version_and_is_itself_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("silver/t");
        let spare = tmp.path().join("_state/spare/silver/t");
        for (run, file) in [("r1", "a"), ("r2", "b"), ("r3", "c")] {
            let staged = tmp.path().join("_staging").join(run).join("t");
            fs::create_dir_all(&staged).unwrap();
            fs::write(staged.join(file), file).unwrap();
            publish_dir(&staged, &target, Some(&spare)).unwrap();
            assert!(!staged.exists());
            assert!(target.join(file).exists());
        }
        // The spare is the version r3 replaced (r2's), and only that.
        assert!(spare.join("b").exists());
        assert!(!spare.join("a").exists());
    }

    #[test]
    fn a_spare_that_cannot_be_kept_does_not_fail_the_publish() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("silver/t");
        // The spare's parent is a file: no folder can be made under it.
        fs::write(tmp.path().join("blocked"), b"").unwrap();
        let spare = tmp.path().join("blocked/t");
        for (run, file) in [("r1", "a"), ("r2", "b")] {
            let staged = tmp.path().join("_staging").join(run).join("t");
            fs::create_dir_all(&staged).unwrap();
            fs::write(staged.join(file), file).unwrap();
            publish_dir(&staged, &target, Some(&spare)).unwrap();
            assert!(!staged.exists(), "the replaced version is removed");
        }
        assert!(target.join("b").exists());
        assert!(!target.join("a").exists());
    }
}

//! Checks of a run's local paths before it takes the lock: the spill
//! folder exists, the output is a folder, and input and output are apart.

use std::path::{Path, PathBuf};

use super::Config;
use crate::error::{Error, Result};

impl Config {
    /// Checks of a run's local paths, made before the lock is taken: the
    /// spill folder exists, the output is not a file, and the input and
    /// output do not contain each other (a run clears `_staging` under its
    /// output and would read its own tables as input).
    pub fn check_paths(&self) -> Result<()> {
        if let Some(dir) = &self.spill_dir
            && !dir.is_dir()
        {
            return Err(Error::Config(format!(
                "spill_dir {} is not an existing folder; create it or remove the setting",
                dir.display()
            )));
        }
        let remote = |p: &Path| crate::storage::parse_location(p).ok().flatten().is_some();
        if remote(&self.output) {
            return Ok(());
        }
        if self.output.exists() && !self.output.is_dir() {
            return Err(Error::Config(format!(
                "output {} is a file, not a folder; pass --output a folder (it is created when missing)",
                self.output.display()
            )));
        }
        if remote(&self.input) {
            return Ok(());
        }
        let (input, output) = (absolute(&self.input), absolute(&self.output));
        if input.starts_with(&output) || output.starts_with(&input) {
            return Err(Error::Config(format!(
                "input {} and output {} overlap (one contains the other); give the output its own folder",
                self.input.display(),
                self.output.display()
            )));
        }
        Ok(())
    }
}

/// `path` made absolute and free of `.`/`..` and symbolic links as far as
/// it exists (the rest is appended as written).
fn absolute(path: &Path) -> PathBuf {
    let joined = std::env::current_dir().unwrap_or_default().join(path);
    let mut existing = joined.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return rest.iter().rev().fold(real, |p, part| p.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return joined,
        }
    }
}

//! Settings of a cluster run (`engine = "ballista"`) and of the table
//! format, checked before any I/O: what the build, the scheduler URL and
//! the output root must be for them to work.

use super::{Config, Engine};
use crate::error::{Error, Result};

impl Config {
    /// `engine = "ballista"`: the build, the scheduler URL and an output the
    /// executors can reach.
    pub(super) fn validate_cluster(&self) -> Result<()> {
        if !cfg!(feature = "distributed") {
            return Err(Error::Config(
                "engine `ballista` needs a medallion built with the `distributed` feature: \
                 cargo build --release (the feature is on by default)"
                    .into(),
            ));
        }
        let scheduler = self.scheduler.as_deref().ok_or_else(|| {
            Error::Config(
                "engine `ballista` needs a scheduler: --scheduler df://host:50050 \
                 (config `scheduler`, env MEDALLION_SCHEDULER)"
                    .into(),
            )
        })?;
        scheduler_address(scheduler)?;
        if crate::storage::parse_location(&self.output)?.is_none() {
            return Err(Error::Config(format!(
                "engine `ballista` writes through the object store, and the executors cannot \
                 see this machine's disk: --output {} must be an s3://bucket/prefix",
                self.output.display()
            )));
        }
        Ok(())
    }

    /// `table_format = "delta"`: a build with the `delta` feature, and the
    /// local engine (a cluster's executors read and write Parquet only).
    pub(super) fn validate_table_format(&self) -> Result<()> {
        if !self.table_format.uses_delta() {
            return Ok(());
        }
        if !cfg!(feature = "delta") {
            return Err(Error::Config(
                "table_format `delta` needs a medallion built with the `delta` feature: \
                 cargo build --release (the feature is on by default)"
                    .into(),
            ));
        }
        if self.engine == Engine::Ballista {
            return Err(Error::Config(
                "table_format `delta` runs on the local engine only: the cluster's executors \
                 read and write Parquet; use --engine local or table_format = \"parquet\""
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Host and port of a scheduler URL `df://host[:port]` (port 50050 when left out).
pub fn scheduler_address(url: &str) -> Result<(String, u16)> {
    let bad = |why: &str| {
        Error::Config(format!(
            "scheduler `{url}`: {why}; expected df://host:port, e.g. df://localhost:50050"
        ))
    };
    let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if parsed.scheme() != "df" {
        return Err(bad(&format!("scheme `{}` is not df", parsed.scheme())));
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host"))?;
    Ok((host.to_string(), parsed.port().unwrap_or(50050)))
}

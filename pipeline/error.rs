//! The one error type of medallion and its `Result` alias.
//!
//! Variants carry the context a user needs to act (which model, which file,
//! which column), and [`Error::exit_code`] maps each kind to the process exit
//! code a scheduler reads (README, "Exit codes"; docs/operations.md).

use std::path::PathBuf;

use datafusion::error::DataFusionError;

/// `Result` with medallion's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Process exit codes (docs/operations.md): distinct for input/config errors and failed data tests.
pub mod exit {
    /// Everything succeeded.
    pub const OK: u8 = 0;
    /// An internal or I/O failure not caused by the input (disk full, engine error).
    pub const FAILURE: u8 = 1;
    /// Bad configuration, flags, SQL models or input files: fix the input and re-run.
    pub const INPUT: u8 = 2;
    /// The pipeline ran but a data test of error severity failed; nothing bad was published.
    pub const DATA_TESTS: u8 = 3;
    /// Another run holds the lock on the output root.
    pub const LOCKED: u8 = 4;
    /// The run was stopped by SIGINT (Ctrl-C): 128 + 2.
    pub const SIGINT: u8 = 130;
    /// The run was stopped by SIGTERM (`docker stop`): 128 + 15.
    pub const SIGTERM: u8 = 143;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration: {0}")]
    Config(String),

    #[error("cannot read config file {path}")]
    ConfigFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid config file {path}")]
    ConfigParse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },

    /// A model's SQL could not be read, parsed or planned.
    #[error("model {name} ({path})")]
    Model {
        name: String,
        path: PathBuf,
        #[source]
        source: Box<Error>,
    },

    /// The model graph is not a DAG or names an unknown table.
    #[error("model graph: {0}")]
    Dag(String),

    /// A source file is unusable as a whole (missing column, not UTF-8, too many bad rows).
    #[error("source {source_name}: {message}")]
    Source {
        source_name: String,
        message: String,
    },

    #[error("input: {0}")]
    Input(String),

    #[error(
        "output root {root} is locked by run {holder}; wait for it to finish or, if that process is gone on another host, delete {lock_file}"
    )]
    Locked {
        root: String,
        holder: String,
        lock_file: PathBuf,
    },

    #[error("{failed} data test(s) of error severity failed: {models}")]
    DataTests { failed: usize, models: String },

    #[error("{failed} of {total} model(s) failed: {models}")]
    ModelsFailed {
        failed: usize,
        total: usize,
        models: String,
        /// True when every failure was caused by bad input rather than the machine.
        input_caused: bool,
    },

    #[error("{context}: {path}")]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    DataFusion(#[from] DataFusionError),

    #[error(transparent)]
    Arrow(#[from] datafusion::arrow::error::ArrowError),

    #[error(transparent)]
    Parquet(#[from] datafusion::parquet::errors::ParquetError),

    #[error(transparent)]
    Json(#[from] serde_json::Error),

    /// S3 or another object store refused or failed a request.
    #[error("object store")]
    ObjectStore(#[from] object_store::Error),

    /// The Ballista cluster (scheduler or executors) failed or cannot be reached.
    #[error("cluster: {0}")]
    Cluster(String),

    /// A query ran on the cluster past `cluster_query_timeout_seconds`.
    #[error(
        "cluster: {what} did not finish within {seconds} s (config `cluster_query_timeout_seconds`, flag --cluster-query-timeout-seconds); the job may have lost an executor: check the scheduler's log, and raise the limit if the query is only slow"
    )]
    ClusterTimeout { what: String, seconds: u64 },

    /// SIGTERM or SIGINT stopped the command (a run's run_results.json says `cancelled`).
    #[error(
        "cancelled by {signal}: every table and envelope is at its previous version or its new one, nothing is half written and no lock is held; run again to finish"
    )]
    Cancelled { signal: &'static str, code: u8 },

    #[error("background task failed")]
    Join(#[from] tokio::task::JoinError),
}

impl Error {
    /// Shorthand for an I/O error with the path it concerns.
    pub fn io(context: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            context,
            path: path.into(),
            source,
        }
    }

    /// Whether this error was caused by user input (config, flags, SQL, data files).
    pub fn is_input_error(&self) -> bool {
        match self {
            Error::Config(_)
            | Error::ConfigFile { .. }
            | Error::ConfigParse { .. }
            | Error::Dag(_)
            | Error::Source { .. }
            | Error::Input(_) => true,
            Error::Model { source, .. } => {
                source.is_input_error() || source.is_plan_error() || source.is_overflow()
            }
            Error::ModelsFailed { input_caused, .. } => *input_caused,
            _ => false,
        }
    }

    /// Arithmetic that a value in the data made overflow (a decimal too
    /// large for its precision, an integer past its range): the data needs
    /// fixing, re-running the same input fails the same way.
    pub fn is_overflow(&self) -> bool {
        let text = error_chain(self).to_ascii_lowercase();
        [
            "overflow",
            "too large to store in a decimal",
            "is out of range",
        ]
        .iter()
        .any(|w| text.contains(w))
    }

    fn is_plan_error(&self) -> bool {
        matches!(
            self,
            Error::DataFusion(
                DataFusionError::Plan(_)
                    | DataFusionError::SQL(..)
                    | DataFusionError::SchemaError(..)
            )
        )
    }

    /// The process exit code for this error (see [`exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::DataTests { .. } => exit::DATA_TESTS,
            Error::Locked { .. } => exit::LOCKED,
            Error::Cancelled { code, .. } => *code,
            e if e.is_input_error() => exit::INPUT,
            _ => exit::FAILURE,
        }
    }
}

/// An error and its causes on one line, `error: cause: cause`, skipping a
/// cause whose text the line already holds: what `main` prints and what
/// run_results.json records.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

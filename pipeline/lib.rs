//! medallion: a batch ETL pipeline that lands CSV sources and Amplitude
//! exports as bronze Parquet, builds silver and gold tables with DataFusion
//! SQL (`sql/<layer>/*.sql`) and publishes them atomically for BI tools.
//!
//! The modules follow a run, each importing only from the ones below it:
//!
//! | step | module |
//! |---|---|
//! | command line | [`cli`], [`commands`] (one file per subcommand) |
//! | one run: plan, lock, schedule, build, publish, report | [`run`] |
//! | data tests on staged tables | [`audit`] |
//! | the models, their sidecars and their graph | [`models`] |
//! | raw inputs into bronze | [`ingest`], [`fetch`] (the Amplitude API), [`generate`] (sample data) |
//! | the query engine and its SQL functions | [`engine`], [`udf`], [`cluster`] (Ballista) |
//! | files | [`parquet`] (encoding, writing), [`storage`] (roots, publish, lock) |
//! | settings | [`config`], [`layer`] |
//! | reporting | [`error`], [`progress`] |

pub mod audit;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod docs;
pub mod engine;
pub mod error;
pub mod fetch;
pub mod generate;
pub mod ingest;
pub mod layer;
pub mod models;
pub mod parquet;
pub mod progress;
pub mod run;
pub mod storage;
pub mod udf;

pub use error::{Error, Result};

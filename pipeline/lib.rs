//! medallion: a batch ETL pipeline that lands CSV sources as bronze Parquet,
//! builds silver and gold tables with DataFusion SQL (`sql/<layer>/*.sql`) and
//! publishes them atomically for BI tools.
//!
//! One run: [`config`] → [`catalog`] + [`dag`] → [`runner`] (per model:
//! [`ingest`] or SQL on the [`engine`] → [`writer`] to staging → [`storage`]
//! publish) → `run_results.json`.

pub mod app;
pub mod audit;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod dag;
pub mod distributed;
pub mod engine;
pub mod error;
pub mod fetch;
pub mod generate;
pub mod ingest;
pub mod progress;
pub mod runner;
pub mod storage;
pub mod udf;
pub mod writer;

pub use error::{Error, Result};

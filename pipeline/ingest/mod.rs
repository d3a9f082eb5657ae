//! Ingestion of raw inputs into bronze: CSV sources (docs/models.md §1.1–1.2).
//!
//! Ingestion is the only step written in Rust rather than SQL, because it
//! decides row by row what is usable and quarantines the rest.

pub mod amplitude;
pub mod cells;
pub mod columns;
pub mod csv;
pub mod envelope;
pub mod files;
pub mod sources;
pub mod values;

pub use self::csv::ingest_source;
pub use files::{IngestOptions, IngestReport, InputFile, Workload, content_hash, discover};
pub use sources::{Source, load_sources};

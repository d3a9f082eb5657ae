//! Ingestion of raw inputs into bronze: CSV sources (SPEC §1.1–1.2).
//!
//! Ingestion is the only step written in Rust rather than SQL, because it
//! decides row by row what is usable and quarantines the rest.

pub mod csv;
pub mod sources;
pub mod values;

pub use self::csv::{discover, ingest_source, IngestOptions, IngestReport, InputFile};
pub use sources::{source, Source, SOURCES};

//! Fetching raw inputs from external APIs into the input folder.

pub mod amplitude;
pub mod query;

//! Parquet: the encoding each layer's files get ([`policy`]) and the
//! streaming writer that stages a query's result with the storage types of
//! the output contract ([`write`]).

pub mod partitioned;
pub mod policy;
pub mod write;

pub use policy::{options_for, properties_for, table_parquet_options, writer_properties};
pub use write::{empty_parquet, storage_schema, storage_type, write_dataframe};

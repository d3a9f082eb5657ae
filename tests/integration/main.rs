//! Integration tests: one binary, one module per concern.

mod abn;
mod amplitude;
mod bad_input;
#[cfg(feature = "distributed")]
mod cluster;
#[cfg(feature = "delta")]
mod delta;
mod deploy;
mod docs;
mod engagement;
mod fetch;
mod golden;
mod incremental;
mod nightly;
mod onboarding;
mod operations;
mod publish;
mod reliability;
mod s3;
mod sources;
mod support;

//! Integration tests: one binary, one module per concern.

mod amplitude;
mod bad_input;
mod common;
mod deploy;
mod engagement;
mod fetch;
mod golden;
mod onboarding;
mod operations;
mod publish;
mod s3;

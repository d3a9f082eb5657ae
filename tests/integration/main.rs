//! Integration tests: one binary, one module per concern.

mod bad_input;
mod common;
mod golden;
mod operations;
mod publish;

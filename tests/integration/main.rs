//! Integration tests: one binary, one module per concern.

mod bad_input;
mod common;
mod engagement;
mod golden;
mod onboarding;
mod operations;
mod publish;

//! The one place that builds DataFusion's `SessionContext`: parallelism,
//! settings and medallion's SQL functions (`crate::udf`). A distributed
//! context can replace this function without touching the runner.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::config::Config;

/// Run-wide facts the SQL functions expose.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub as_of: NaiveDate,
    /// Numeric variables, read with `param('<name>')`.
    pub variables: BTreeMap<String, f64>,
    /// Text variables, read with `setting('<name>')`.
    pub text_variables: BTreeMap<String, String>,
}

impl RunContext {
    pub fn new(as_of: NaiveDate, config: &Config) -> Self {
        RunContext {
            as_of,
            variables: config.variables.as_map(),
            text_variables: config.variables.text_map(),
        }
    }
}

/// Days since the Unix epoch of a date (Date32's representation).
pub fn date32(d: NaiveDate) -> i32 {
    d.num_days_from_ce() - 719_163
}

/// Build the session every model of a run is planned and executed in.
pub fn session_context(config: &Config, run: &RunContext) -> SessionContext {
    let partitions = if config.target_partitions == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        config.target_partitions
    };
    let session = SessionConfig::new()
        .with_target_partitions(partitions)
        .with_information_schema(true)
        // Plain Utf8 rather than Utf8View: what every BI reader of our Parquet understands.
        .set_bool(
            "datafusion.execution.parquet.schema_force_view_types",
            false,
        )
        .set_str("datafusion.execution.time_zone", "+00:00");
    let ctx = SessionContext::new_with_config(session);
    register_functions(&ctx, run);
    ctx
}

/// Register medallion's SQL functions on a context (see [`crate::udf`]).
pub fn register_functions(ctx: &SessionContext, run: &RunContext) {
    crate::udf::register(ctx, run);
}

//! The one place that builds DataFusion's `SessionContext`: parallelism,
//! settings and medallion's SQL functions. A distributed context can replace
//! this function without touching the runner.
//!
//! SQL functions registered here:
//! - `as_of_date()` — the run's as-of date (Date32); folded to a constant at planning.
//! - `param('<name>')` — a business variable from the config (Float64), SPEC §3.
//! - `days_between(later, earlier)` — whole days between two dates (Int64).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use datafusion::arrow::array::{Array, ArrayRef, Date32Array, Int64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, ScalarValue, exec_err};
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::config::Config;

/// Run-wide facts the SQL functions expose.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub as_of: NaiveDate,
    pub variables: BTreeMap<String, f64>,
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

/// Register medallion's scalar functions on a context.
pub fn register_functions(ctx: &SessionContext, run: &RunContext) {
    let as_of = date32(run.as_of);
    ctx.register_udf(create_udf(
        "as_of_date",
        vec![],
        DataType::Date32,
        Volatility::Immutable,
        Arc::new(move |_args: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(ScalarValue::Date32(Some(as_of))))
        }),
    ));

    let variables = run.variables.clone();
    ctx.register_udf(create_udf(
        "param",
        vec![DataType::Utf8],
        DataType::Float64,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let name = match args.first() {
                Some(ColumnarValue::Scalar(ScalarValue::Utf8(Some(n)))) => n.clone(),
                _ => return exec_err!("param() takes one constant string: the variable name"),
            };
            match variables.get(&name) {
                Some(v) => Ok(ColumnarValue::Scalar(ScalarValue::Float64(Some(*v)))),
                None => exec_err!(
                    "param('{name}'): unknown variable; known: {}",
                    variables.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            }
        }),
    ));

    ctx.register_udf(create_udf(
        "days_between",
        vec![DataType::Date32, DataType::Date32],
        DataType::Int64,
        Volatility::Immutable,
        Arc::new(days_between),
    ));
}

fn days_between(args: &[ColumnarValue]) -> Result<ColumnarValue, DataFusionError> {
    let [later, earlier] = args else {
        return exec_err!("days_between(later, earlier) takes two dates");
    };
    if let (ColumnarValue::Scalar(a), ColumnarValue::Scalar(b)) = (later, earlier) {
        let value = match (a, b) {
            (ScalarValue::Date32(Some(a)), ScalarValue::Date32(Some(b))) => {
                Some(i64::from(*a) - i64::from(*b))
            }
            _ => None,
        };
        return Ok(ColumnarValue::Scalar(ScalarValue::Int64(value)));
    }
    let rows = match (later, earlier) {
        (ColumnarValue::Array(a), _) | (_, ColumnarValue::Array(a)) => a.len(),
        _ => 0,
    };
    let a = later.clone().into_array(rows)?;
    let b = earlier.clone().into_array(rows)?;
    let (Some(a), Some(b)) = (
        a.as_any().downcast_ref::<Date32Array>(),
        b.as_any().downcast_ref::<Date32Array>(),
    ) else {
        return exec_err!("days_between expects Date32 arguments");
    };
    let out: Int64Array = a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| Some(i64::from(x?) - i64::from(y?)))
        .collect();
    Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
}

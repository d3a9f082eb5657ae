//! medallion's SQL functions, registered on every session by [`register`].
//!
//! | function | returns |
//! |---|---|
//! | `as_of_date()` | the run's as-of date (Date32), folded to a constant at planning |
//! | `param('<name>')` | a numeric business variable from the config (Float64) |
//! | `setting('<name>')` | a text business variable from the config (Utf8) |
//! | `days_between(later, earlier)` | whole days between two dates (Int64) |
//! | `murmur3_x86_32(text)` | MurmurHash3 x86 32-bit, seed 0, as an unsigned value (Int64) |
//! | `utc_date(timestamp)` | the UTC calendar day of a `Timestamp(µs, "UTC")` (Date32) |
//! | `key_hash(text)` | 64 bits of the XXH3-128 hash of the text (Int64): a cheap grouping key for long string keys |
//! | `ab_test(x0, n0, x1, n1, alpha)` | struct of the two-proportion test (docs/models.md §3.8) |
//! | `srm_test(control, treatment, expected_control_share)` | struct {chi_square, p_value} |
//! | `chance_to_beat_control(x_c, n_c, x_v, n_v)` | P(variant's rate > control's) under Beta(1 + x, 1 + n − x) posteriors, exact to 1e-6 (Float64; NULL when an arm has no users; module `bayes`) |
//! | `expected_loss(x_c, n_c, x_v, n_v)` | E[max(control's rate − variant's, 0)] under the same posteriors (Float64; module `bayes`) |
//! | `seq_ci(x0, n0, x1, n1, alpha, tuning)` | struct {seq_ci_low, seq_ci_high, seq_significant}: the peeking-safe confidence sequence of p₁ − p₀ (docs/models.md §3.9) |
//! | `chi2_sf(x, df)` | the χ² survival function, for the SRM test over k arms (df = k − 1) (Float64) |
//! | `row_hash(a, b, …)` | 64 bits of the XXH3-128 hash of the values' row encoding (Int64): a grouping key for several columns; NULLs hash like any value |
//! | `round_half_away(x, digits)` | `x` rounded to `digits` decimals, exact decimal ties away from zero (module `round`) |
//! | `repeated_keys(key)` (aggregate) | the non-NULL `bigint` keys occurring more than once, as a list for `unnest` (module `repeated`) |

pub mod ab;
pub mod bayes;
pub mod repeated;
pub mod round;
pub mod stats;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Date32Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::{DataFusionError, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, create_udf,
};
use datafusion::prelude::SessionContext;

use twox_hash::xxhash3_128::Hasher as Xxh3;

use chrono::{Datelike, NaiveDate};

use crate::config::Config;

type FnResult = Result<ColumnarValue, DataFusionError>;

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

/// Register every function on `ctx`.
pub fn register(ctx: &SessionContext, run: &RunContext) {
    let as_of = date32(run.as_of);
    ctx.register_udf(create_udf(
        "as_of_date",
        vec![],
        DataType::Date32,
        Volatility::Immutable,
        Arc::new(move |_: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(ScalarValue::Date32(Some(as_of))))
        }),
    ));
    let numbers = run.variables.clone();
    ctx.register_udf(create_udf(
        "param",
        vec![DataType::Utf8],
        DataType::Float64,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let name = constant_name("param", args)?;
            match numbers.get(&name) {
                Some(v) => Ok(ColumnarValue::Scalar(ScalarValue::Float64(Some(*v)))),
                None => exec_err!(
                    "param('{name}'): unknown numeric variable; known: {}",
                    keys(&numbers)
                ),
            }
        }),
    ));
    let texts = run.text_variables.clone();
    ctx.register_udf(create_udf(
        "setting",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let name = constant_name("setting", args)?;
            match texts.get(&name) {
                Some(v) => Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(v.clone())))),
                None => exec_err!(
                    "setting('{name}'): unknown text variable; known: {}",
                    keys(&texts)
                ),
            }
        }),
    ));
    for function in pure_functions() {
        ctx.register_udf(function);
    }
    for function in pure_aggregates() {
        ctx.register_udaf(function);
    }
}

/// The aggregate functions, all pure; Ballista's processes register them
/// beside [`pure_functions`].
pub fn pure_aggregates() -> Vec<datafusion::logical_expr::AggregateUDF> {
    vec![repeated::repeated_keys()]
}

/// The functions whose result depends only on their arguments. These are
/// the ones a Ballista scheduler and its executors register
/// (`crate::cluster`): `as_of_date()`, `param()` and `setting()` take
/// constant arguments and are folded into literals while the driver plans
/// a query, so they never reach the cluster.
pub fn pure_functions() -> Vec<ScalarUDF> {
    let mut functions = vec![
        create_udf(
            "days_between",
            vec![DataType::Date32, DataType::Date32],
            DataType::Int64,
            Volatility::Immutable,
            Arc::new(days_between),
        ),
        create_udf(
            "utc_date",
            vec![DataType::Timestamp(
                TimeUnit::Microsecond,
                Some("UTC".into()),
            )],
            DataType::Date32,
            Volatility::Immutable,
            Arc::new(utc_date),
        ),
        create_udf(
            "key_hash",
            vec![DataType::Utf8],
            DataType::Int64,
            Volatility::Immutable,
            Arc::new(key_hash),
        ),
        ScalarUDF::new_from_impl(RowHash::default()),
        round::udf(),
        create_udf(
            "murmur3_x86_32",
            vec![DataType::Utf8],
            DataType::Int64,
            Volatility::Immutable,
            Arc::new(murmur3_x86_32),
        ),
    ];
    functions.extend(ab::functions());
    functions
}

fn keys<V>(map: &BTreeMap<String, V>) -> String {
    map.keys().cloned().collect::<Vec<_>>().join(", ")
}

fn constant_name(function: &str, args: &[ColumnarValue]) -> Result<String, DataFusionError> {
    match args.first() {
        Some(ColumnarValue::Scalar(ScalarValue::Utf8(Some(n)))) => Ok(n.clone()),
        _ => exec_err!("{function}() takes one constant string: the variable name"),
    }
}

/// Number of rows of a call: the length of any array argument, else 1.
fn rows(args: &[ColumnarValue]) -> usize {
    args.iter()
        .find_map(|a| match a {
            ColumnarValue::Array(a) => Some(a.len()),
            ColumnarValue::Scalar(_) => None,
        })
        .unwrap_or(1)
}

fn all_scalar(args: &[ColumnarValue]) -> bool {
    args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)))
}

/// Return an array result, or a scalar when every argument was a scalar.
fn finish(array: ArrayRef, scalar: bool) -> FnResult {
    if scalar {
        return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            &array, 0,
        )?));
    }
    Ok(ColumnarValue::Array(array))
}

fn arrays(args: &[ColumnarValue]) -> Result<Vec<ArrayRef>, DataFusionError> {
    let n = rows(args);
    args.iter().map(|a| a.clone().into_array(n)).collect()
}

fn downcast<'a, T: 'static>(array: &'a ArrayRef, function: &str) -> Result<&'a T, DataFusionError> {
    match array.as_any().downcast_ref::<T>() {
        Some(a) => Ok(a),
        None => exec_err!("{function}: unexpected argument type {}", array.data_type()),
    }
}

fn days_between(args: &[ColumnarValue]) -> FnResult {
    let a = arrays(args)?;
    let (later, earlier) = (
        downcast::<Date32Array>(&a[0], "days_between")?,
        downcast::<Date32Array>(&a[1], "days_between")?,
    );
    let out: Int64Array = later
        .iter()
        .zip(earlier.iter())
        .map(|(x, y)| Some(i64::from(x?) - i64::from(y?)))
        .collect();
    finish(Arc::new(out), all_scalar(args))
}

/// MurmurHash3 x86 32-bit with seed 0 of the UTF-8 bytes (the `murmur3` crate).
pub fn murmur3_hash(text: &str) -> u32 {
    // Reading from an in-memory cursor cannot fail.
    murmur3::murmur3_32(&mut Cursor::new(text.as_bytes()), 0).unwrap_or(0)
}

fn murmur3_x86_32(args: &[ColumnarValue]) -> FnResult {
    let a = arrays(args)?;
    let text = downcast::<StringArray>(&a[0], "murmur3_x86_32")?;
    let out: Int64Array = text
        .iter()
        .map(|t| t.map(|t| i64::from(murmur3_hash(t))))
        .collect();
    finish(Arc::new(out), all_scalar(args))
}

/// 64 bits of the XXH3-128 hash of the UTF-8 bytes. Silver de-duplication
/// groups by it to find candidate duplicated keys: grouping 50 M integers is
/// much cheaper than grouping 50 M strings, and a collision only sends two
/// distinct keys through the exact per-key window, which keeps both.
fn key_hash(args: &[ColumnarValue]) -> FnResult {
    let a = arrays(args)?;
    let text = downcast::<StringArray>(&a[0], "key_hash")?;
    let out: Int64Array = text
        .iter()
        .map(|t| t.map(|t| Xxh3::oneshot(t.as_bytes()) as u64 as i64))
        .collect();
    finish(Arc::new(out), all_scalar(args))
}

/// `row_hash(a, b, …)`: one 64-bit key per row for any columns, so that a
/// `unique` test over several columns can look for repeats the way it does
/// over one (`repeated_keys`). The values are encoded with arrow's row
/// format, which is injective (two rows encode alike only when every value,
/// NULL included, is equal), then hashed like `key_hash`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct RowHash {
    signature: Signature,
}

impl Default for RowHash {
    fn default() -> Self {
        RowHash {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for RowHash {
    fn name(&self) -> &str {
        "row_hash"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType, DataFusionError> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> FnResult {
        let columns = ColumnarValue::values_to_arrays(&args.args)?;
        let fields = columns
            .iter()
            .map(|c| SortField::new(c.data_type().clone()))
            .collect();
        let rows = RowConverter::new(fields)?.convert_columns(&columns)?;
        let out: Int64Array = rows
            .iter()
            .map(|row| Some(Xxh3::oneshot(row.as_ref()) as u64 as i64))
            .collect();
        finish(Arc::new(out), all_scalar(&args.args))
    }
}

/// The UTC day of each instant: what `cast(ts as date)` gives for a UTC
/// timestamp, by integer division instead of a time-zone lookup per value,
/// which costs (docs/performance.md).
fn utc_date(args: &[ColumnarValue]) -> FnResult {
    const MICROS_PER_DAY: i64 = 86_400_000_000;
    let a = arrays(args)?;
    let instants = downcast::<TimestampMicrosecondArray>(&a[0], "utc_date")?;
    // Days since 1970 of any µs timestamp fit in i32 (±292 000 years).
    let days: Date32Array = instants.unary(|micros| micros.div_euclid(MICROS_PER_DAY) as i32);
    finish(Arc::new(days), all_scalar(args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;

    #[test]
    fn key_hash_is_stable_per_text_and_keeps_nulls() {
        let input: ArrayRef = Arc::new(StringArray::from(vec![
            Some("e000000001"),
            None,
            Some("e000000002"),
            Some("e000000001"),
        ]));
        let ColumnarValue::Array(out) = key_hash(&[ColumnarValue::Array(input)]).unwrap() else {
            panic!("an array argument gives an array");
        };
        let out = out.as_any().downcast_ref::<Int64Array>().unwrap();
        assert!(out.is_null(1));
        assert_eq!(out.value(0), out.value(3));
        assert_ne!(out.value(0), out.value(2));
        // The low 64 bits of XXH3-128.
        assert_eq!(out.value(0), Xxh3::oneshot(b"e000000001") as u64 as i64);
    }

    #[test]
    fn row_hash_tells_rows_apart_by_every_value_and_null() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![
            Some(1),
            Some(1),
            None,
            None,
            Some(1),
        ]));
        let b: ArrayRef = Arc::new(StringArray::from(vec![
            Some("x"),
            Some("y"),
            Some("x"),
            Some("x"),
            Some("x"),
        ]));
        let args = ScalarFunctionArgs {
            args: vec![ColumnarValue::Array(a), ColumnarValue::Array(b)],
            arg_fields: vec![
                Arc::new(Field::new("a", DataType::Int64, true)),
                Arc::new(Field::new("b", DataType::Utf8, true)),
            ],
            number_rows: 5,
            return_field: Arc::new(Field::new("h", DataType::Int64, false)),
            config_options: Arc::new(Default::default()),
        };
        let ColumnarValue::Array(out) = RowHash::default().invoke_with_args(args).unwrap() else {
            panic!("array arguments give an array");
        };
        let h = out.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(h.null_count(), 0);
        assert_eq!(h.value(0), h.value(4), "equal rows hash alike");
        assert_eq!(h.value(2), h.value(3), "NULL is a value like any other");
        assert_ne!(h.value(0), h.value(1));
        assert_ne!(h.value(0), h.value(2));
    }

    #[test]
    fn utc_date_is_the_cast_to_date_of_utc_instants() {
        use datafusion::arrow::compute::cast;
        let instants = TimestampMicrosecondArray::from(vec![
            Some(0),
            Some(86_400_000_000 - 1),
            Some(-1),
            None,
            Some(1_793_404_800_000_000 + 3_600_000_000), // 2026-10-31 01:00
            Some(-86_400_000_000 * 365),
        ])
        .with_timezone("UTC");
        let input: ArrayRef = Arc::new(instants);
        let ColumnarValue::Array(out) = utc_date(&[ColumnarValue::Array(input.clone())]).unwrap()
        else {
            panic!("an array argument gives an array");
        };
        let expected = cast(&input, &DataType::Date32).unwrap();
        assert_eq!(&out, &expected);
        let out = out.as_any().downcast_ref::<Date32Array>().unwrap();
        assert_eq!(out.value(2), -1, "the instant before 1970 is on 1969-12-31");
        assert_eq!(out.value(4), 20_757);
        assert!(out.is_null(3));
    }

    /// Published MurmurHash3_x86_32 vectors (seed 0), cross-checked with the
    /// Python `mmh3` 5.3.1 package: `mmh3.hash(s, 0, signed=False)`.
    #[test]
    fn murmur3_matches_published_vectors() {
        assert_eq!(murmur3_hash(""), 0);
        assert_eq!(murmur3_hash("hello"), 0x248b_fa47);
        assert_eq!(
            murmur3_hash("The quick brown fox jumps over the lazy dog"),
            0x2e4f_f723
        );
        assert_eq!(murmur3_hash("onboarding-v1/1"), 981_104_291);
    }
}

//! The A/B SQL functions (docs/models.md §3.8, §3.9): argument unpacking,
//! NULL handling and result structs around the arithmetic of `stats` and
//! `bayes`.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanBuilder, Float64Array, Float64Builder, Int64Array, StructArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

use datafusion::common::DataFusionError;

use super::{FnResult, all_scalar, arrays, bayes, downcast, finish, stats};

/// `ab_test`, `chance_to_beat_control`, `expected_loss`, `seq_ci`,
/// `chi2_sf` and `srm_test`.
pub fn functions() -> Vec<ScalarUDF> {
    vec![
        create_udf(
            "ab_test",
            counts_then(&[DataType::Float64]),
            DataType::Struct(ab_test_fields()),
            Volatility::Immutable,
            Arc::new(ab_test),
        ),
        create_udf(
            "chance_to_beat_control",
            counts_then(&[]),
            DataType::Float64,
            Volatility::Immutable,
            Arc::new(|args: &[ColumnarValue]| {
                four_counts(
                    args,
                    "chance_to_beat_control",
                    bayes::chance_to_beat_control,
                )
            }),
        ),
        create_udf(
            "expected_loss",
            counts_then(&[]),
            DataType::Float64,
            Volatility::Immutable,
            Arc::new(|args: &[ColumnarValue]| {
                four_counts(args, "expected_loss", bayes::expected_loss)
            }),
        ),
        create_udf(
            "seq_ci",
            counts_then(&[DataType::Float64, DataType::Float64]),
            DataType::Struct(seq_ci_fields()),
            Volatility::Immutable,
            Arc::new(seq_ci),
        ),
        create_udf(
            "chi2_sf",
            vec![DataType::Float64, DataType::Int64],
            DataType::Float64,
            Volatility::Immutable,
            Arc::new(chi2_sf),
        ),
        create_udf(
            "srm_test",
            vec![DataType::Int64, DataType::Int64, DataType::Float64],
            DataType::Struct(srm_fields()),
            Volatility::Immutable,
            Arc::new(srm_test),
        ),
    ]
}

/// The argument types of an A/B function: the two arms' counts
/// (x0, n0, x1, n1) as Int64, then `rest`.
fn counts_then(rest: &[DataType]) -> Vec<DataType> {
    let mut types = vec![DataType::Int64; 4];
    types.extend_from_slice(rest);
    types
}

/// The two arms' counts, an A/B function's first four arguments.
struct Counts<'a>([&'a Int64Array; 4]);

impl<'a> Counts<'a> {
    fn new(a: &'a [ArrayRef], function: &str) -> Result<Counts<'a>, DataFusionError> {
        let ints = |i: usize| downcast::<Int64Array>(&a[i], function);
        Ok(Counts([ints(0)?, ints(1)?, ints(2)?, ints(3)?]))
    }

    fn len(&self) -> usize {
        self.0[0].len()
    }

    /// (x0, n0, x1, n1) of row `i`; `None` when any is NULL.
    fn row(&self, i: usize) -> Option<(i64, i64, i64, i64)> {
        let [x0, n0, x1, n1] = self.0;
        if self.0.iter().any(|c| c.is_null(i)) {
            return None;
        }
        Some((x0.value(i), n0.value(i), x1.value(i), n1.value(i)))
    }
}

fn ab_test_fields() -> Fields {
    let f = |name: &str| Field::new(name, DataType::Float64, true);
    Fields::from(vec![
        f("control_rate"),
        f("treatment_rate"),
        f("abs_diff"),
        f("relative_lift"),
        f("z_score"),
        f("p_value"),
        f("ci_low"),
        f("ci_high"),
        Field::new("significant", DataType::Boolean, false),
    ])
}

fn ab_test(args: &[ColumnarValue]) -> FnResult {
    let a = arrays(args)?;
    let counts = Counts::new(&a, "ab_test")?;
    let alpha = downcast::<Float64Array>(&a[4], "ab_test")?;
    let mut cols: Vec<Float64Builder> = (0..8).map(|_| Float64Builder::new()).collect();
    let mut significant = BooleanBuilder::new();
    for i in 0..counts.len() {
        let r = counts
            .row(i)
            .filter(|_| !alpha.is_null(i))
            .map(|(x0, n0, x1, n1)| stats::two_proportion(x0, n0, x1, n1, alpha.value(i)));
        let values = r.map_or([None; 8], |r| {
            [
                r.control_rate,
                r.treatment_rate,
                r.abs_diff,
                r.relative_lift,
                r.z_score,
                r.p_value,
                r.ci_low,
                r.ci_high,
            ]
        });
        for (b, v) in cols.iter_mut().zip(values) {
            b.append_option(v);
        }
        significant.append_value(r.is_some_and(|r| r.significant));
    }
    let mut arrays: Vec<ArrayRef> = cols
        .iter_mut()
        .map(|b| Arc::new(b.finish()) as ArrayRef)
        .collect();
    arrays.push(Arc::new(significant.finish()));
    let out = StructArray::try_new(ab_test_fields(), arrays, None)?;
    finish(Arc::new(out), all_scalar(args))
}

/// A function of two arms' counts (x_c, n_c, x_v, n_v) per row; NULL in, NULL out.
fn four_counts(
    args: &[ColumnarValue],
    name: &str,
    f: fn(i64, i64, i64, i64) -> Option<f64>,
) -> FnResult {
    let a = arrays(args)?;
    let counts = Counts::new(&a, name)?;
    let mut out = Float64Builder::with_capacity(counts.len());
    for i in 0..counts.len() {
        out.append_option(counts.row(i).and_then(|(x0, n0, x1, n1)| f(x0, n0, x1, n1)));
    }
    finish(Arc::new(out.finish()), all_scalar(args))
}

fn seq_ci_fields() -> Fields {
    Fields::from(vec![
        Field::new("seq_ci_low", DataType::Float64, true),
        Field::new("seq_ci_high", DataType::Float64, true),
        Field::new("seq_significant", DataType::Boolean, false),
    ])
}

fn seq_ci(args: &[ColumnarValue]) -> FnResult {
    let a = arrays(args)?;
    let counts = Counts::new(&a, "seq_ci")?;
    let floats = |i: usize| downcast::<Float64Array>(&a[i], "seq_ci");
    let (alpha, tuning) = (floats(4)?, floats(5)?);
    let (mut low, mut high) = (Float64Builder::new(), Float64Builder::new());
    let mut significant = BooleanBuilder::new();
    for i in 0..counts.len() {
        let interval = counts
            .row(i)
            .filter(|_| !alpha.is_null(i) && !tuning.is_null(i))
            .and_then(|(x0, n0, x1, n1)| {
                stats::seq_interval(x0, n0, x1, n1, alpha.value(i), tuning.value(i))
            });
        low.append_option(interval.map(|(l, _)| l));
        high.append_option(interval.map(|(_, h)| h));
        significant.append_value(interval.is_some_and(|(l, h)| l > 0.0 || h < 0.0));
    }
    let out = StructArray::try_new(
        seq_ci_fields(),
        vec![
            Arc::new(low.finish()),
            Arc::new(high.finish()),
            Arc::new(significant.finish()),
        ],
        None,
    )?;
    finish(Arc::new(out), all_scalar(args))
}

fn chi2_sf(args: &[ColumnarValue]) -> FnResult {
    let a = arrays(args)?;
    let x = downcast::<Float64Array>(&a[0], "chi2_sf")?;
    let df = downcast::<Int64Array>(&a[1], "chi2_sf")?;
    let mut out = Float64Builder::with_capacity(x.len());
    for i in 0..x.len() {
        out.append_option(if x.is_null(i) || df.is_null(i) {
            None
        } else {
            stats::chi2_sf(x.value(i), df.value(i))
        });
    }
    finish(Arc::new(out.finish()), all_scalar(args))
}

fn srm_fields() -> Fields {
    Fields::from(vec![
        Field::new("chi_square", DataType::Float64, true),
        Field::new("p_value", DataType::Float64, true),
    ])
}

fn srm_test(args: &[ColumnarValue]) -> FnResult {
    let a = arrays(args)?;
    let control = downcast::<Int64Array>(&a[0], "srm_test")?;
    let treatment = downcast::<Int64Array>(&a[1], "srm_test")?;
    let share = downcast::<Float64Array>(&a[2], "srm_test")?;
    let (mut chi, mut p) = (Float64Builder::new(), Float64Builder::new());
    for i in 0..control.len() {
        let (c, pv) = if control.is_null(i) || treatment.is_null(i) || share.is_null(i) {
            (None, None)
        } else {
            stats::srm(control.value(i), treatment.value(i), share.value(i))
        };
        chi.append_option(c);
        p.append_option(pv);
    }
    let out = StructArray::try_new(
        srm_fields(),
        vec![Arc::new(chi.finish()), Arc::new(p.finish())],
        None,
    )?;
    finish(Arc::new(out), all_scalar(args))
}

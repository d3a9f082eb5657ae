//! The audit step of write–audit–publish: run a model's data tests (declared
//! in its sidecar, `crate::models::sidecar`) on a staged or published table,
//! each a query counting the failing rows (the tests that judge each row by
//! its values share one scan), and keep a sample of them.

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use serde::Serialize;

use crate::cluster::within_cluster_limit;
use crate::engine::read_only;
use crate::error::{Error, Result, error_chain};
use crate::models::sidecar::{DataTest, Severity, TestKind, quote_ident};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TestStatus {
    Pass,
    Fail,
    /// The test itself could not run (bad SQL, missing table): treated as a failure.
    Error,
}

/// One test's line in run_results.json.
#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    pub name: String,
    pub severity: Severity,
    pub status: TestStatus,
    pub failing_rows: u64,
    /// Up to [`SAMPLE_ROWS`] failing rows, as JSON objects.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sample: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl TestResult {
    /// Whether this result blocks publishing.
    pub fn blocks(&self) -> bool {
        self.severity == Severity::Error && self.status != TestStatus::Pass
    }
}

/// Failing rows kept as examples per test.
pub const SAMPLE_ROWS: usize = 5;

/// Which rows of a model's table its data tests read.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Every row: a full build, `medallion test`.
    Whole,
    /// An incremental build: `rows` names a table of the partitions (by
    /// date column `by`) this build wrote, the rest being files that passed
    /// their tests before; `keys` are the columns whose every row it
    /// rewrote, wherever it was (see `DataTest::recomputed_rows_sql`).
    Recomputed {
        rows: &'a str,
        by: &'a str,
        keys: &'a [String],
    },
}

/// Run `tests` against the table registered as `table` in `ctx`; on a
/// cluster, each for at most `cluster_seconds` (0 = no limit), past which
/// the test reports an error.
pub async fn run_tests(
    ctx: &SessionContext,
    table: &str,
    tests: &[DataTest],
    cluster_seconds: u64,
    scope: Scope<'_>,
) -> Vec<TestResult> {
    let mut results = Vec::with_capacity(tests.len());
    let counted = row_counts(ctx, table, tests, cluster_seconds, scope).await;
    for (test, count) in tests.iter().zip(counted) {
        let outcome = within_cluster_limit(
            cluster_seconds,
            || format!("data test {} of {table}", test.name),
            run_one(ctx, table, test, scope, count),
        )
        .await;
        let result = match outcome {
            Ok((failing_rows, sample)) => TestResult {
                name: test.name.clone(),
                severity: test.severity,
                status: if failing_rows == 0 {
                    TestStatus::Pass
                } else {
                    TestStatus::Fail
                },
                failing_rows,
                sample,
                error: None,
            },
            Err(e) => TestResult {
                name: test.name.clone(),
                severity: test.severity,
                status: TestStatus::Error,
                failing_rows: 0,
                sample: Vec::new(),
                error: Some(error_chain(&e)),
            },
        };
        match result.status {
            TestStatus::Pass => {
                tracing::debug!(model = table, test = %result.name, "Data test passed.")
            }
            _ => tracing::warn!(
                model = table,
                test = %result.name,
                severity = ?result.severity,
                failing_rows = result.failing_rows,
                error = result.error.as_deref().unwrap_or(""),
                "Data test failed."
            ),
        }
        results.push(result);
    }
    results
}

/// The failing-row counts of the tests that judge each row on its own
/// (`DataTest::row_condition`) by its values (`accepted_values`,
/// `expression`), counted together in one scan of the rows
/// `scope` says, in the order of `tests`; `None` for the other tests. Two
/// or more such tests are what makes the shared scan pay; when it fails
/// (one test's expression does not plan), every test runs alone, so that
/// the error is the failing test's own.
async fn row_counts(
    ctx: &SessionContext,
    table: &str,
    tests: &[DataTest],
    cluster_seconds: u64,
    scope: Scope<'_>,
) -> Vec<Option<u64>> {
    // A `not_null` test stays alone: the files' null counts answer its
    // filter without reading a value, which a shared scan would give up.
    let conditions: Vec<Option<String>> = tests
        .iter()
        .map(|t| match t.kind {
            TestKind::NotNull(_) => None,
            _ => t.row_condition(),
        })
        .collect();
    let shared: Vec<&String> = conditions.iter().flatten().collect();
    if shared.len() < 2 {
        return vec![None; tests.len()];
    }
    // Row tests read the recomputed rows only (`DataTest::recomputed_rows_sql`).
    let rows = match scope {
        Scope::Whole => table,
        Scope::Recomputed { rows, .. } => rows,
    };
    let counts = shared
        .iter()
        .enumerate()
        .map(|(i, cond)| format!("count(*) filter (where {cond}) as failing_{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("select {counts} from {}", quote_ident(rows));
    let counted = within_cluster_limit(
        cluster_seconds,
        || format!("row data tests of {table}"),
        async {
            let batches = ctx
                .sql_with_options(&sql, read_only())
                .await?
                .collect()
                .await?;
            (0..shared.len())
                .map(|i| read_count(&batches, i, &format!("row data test {i} of {table}")))
                .collect::<Result<Vec<u64>>>()
        },
    )
    .await;
    let mut counted = match counted {
        Ok(counts) => counts.into_iter(),
        Err(e) => {
            tracing::debug!(model = table, error = %error_chain(&e), "Row data tests run one by one.");
            return vec![None; tests.len()];
        }
    };
    conditions
        .iter()
        .map(|c| c.as_ref().and_then(|_| counted.next()))
        .collect()
}

/// The count in column `column` of the one row of `batches`. A count that
/// cannot be read is an error, never "0 failing rows".
fn read_count(batches: &[RecordBatch], column: usize, what: &str) -> Result<u64> {
    let count = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .and_then(|b| {
            (column < b.num_columns())
                .then(|| b.column(column))?
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .filter(|a| a.is_valid(0))
                .map(|a| a.value(0))
        })
        .ok_or_else(|| {
            Error::DataFusion(DataFusionError::Internal(format!(
                "{what}: its failing-row count did not come back as one Int64 value"
            )))
        })?;
    Ok(count.max(0) as u64)
}

/// Run one test: count its failing rows (unless `counted` already did, in
/// the shared scan of `row_counts`) and, when some fail, keep a sample.
async fn run_one(
    ctx: &SessionContext,
    table: &str,
    test: &DataTest,
    scope: Scope<'_>,
    counted: Option<u64>,
) -> Result<(u64, Vec<serde_json::Value>)> {
    if counted == Some(0) {
        return Ok((0, Vec::new()));
    }
    let schema = ctx.table(table).await?.schema().as_arrow().clone();
    let failing = match scope {
        Scope::Whole => test.failing_rows_sql(table, &schema),
        Scope::Recomputed { rows, by, keys } => {
            test.recomputed_rows_sql(table, rows, by, keys, &schema)
        }
    };
    let count = match counted {
        Some(count) => count,
        None => {
            let count_sql = format!("select count(*) as failing from ({failing}) as failing_rows");
            let batches = ctx
                .sql_with_options(&count_sql, read_only())
                .await?
                .collect()
                .await?;
            read_count(&batches, 0, &format!("data test {} of {table}", test.name))?
        }
    };
    if count == 0 {
        return Ok((0, Vec::new()));
    }
    let sample = ctx
        .sql_with_options(&failing, read_only())
        .await?
        .limit(0, Some(SAMPLE_ROWS))?
        .collect()
        .await?;
    Ok((count, batches_to_json(&sample)?))
}

/// Record batches as a list of JSON objects.
pub fn batches_to_json(batches: &[RecordBatch]) -> Result<Vec<serde_json::Value>> {
    let mut writer = datafusion::arrow::json::ArrayWriter::new(Vec::new());
    for b in batches {
        writer.write(b)?;
    }
    writer.finish()?;
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    Ok(serde_json::from_slice(&bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn row_tests_counted_in_one_scan_match_each_test_alone() {
        use datafusion::arrow::array::{Int64Array, StringArray};
        use std::sync::Arc;

        let ctx = SessionContext::new();
        let batch = RecordBatch::try_from_iter([
            (
                "s",
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    None,
                    Some("x"),
                    Some("y"),
                    Some("z"),
                    Some("b"),
                    Some("b"),
                ])) as _,
            ),
            (
                "n",
                Arc::new(Int64Array::from(vec![
                    Some(1),
                    Some(-2),
                    None,
                    Some(-5),
                    Some(6),
                    Some(4),
                    Some(-7),
                ])) as _,
            ),
        ])
        .unwrap();
        ctx.register_batch("m", batch).unwrap();
        let test = |name: &str, kind| DataTest {
            name: name.into(),
            severity: Severity::Error,
            kind,
        };
        let tests = [
            test("s not null", TestKind::NotNull(vec!["s".into()])),
            test(
                "s in a, b",
                TestKind::AcceptedValues {
                    column: "s".into(),
                    values: vec!["'a'".into(), "'b'".into()],
                },
            ),
            test("n above -6", TestKind::Expression("n > -6".into())),
            test("n positive", TestKind::Expression("n > 0".into())),
        ];
        for (i, t) in tests.iter().enumerate() {
            assert!(t.row_condition().is_some(), "test {i} is a row test");
        }
        let shared = run_tests(&ctx, "m", &tests, 0, Scope::Whole).await;
        let outcome = |r: &TestResult| (r.status, r.failing_rows, r.sample.len());
        let fail = |n| (TestStatus::Fail, n, n as usize);
        // Distinct counts: a count given to the wrong test shows.
        assert_eq!(
            shared.iter().map(outcome).collect::<Vec<_>>(),
            [fail(1), fail(3), fail(2), fail(4)],
            "{shared:?}"
        );
        // Each test alone takes its own query, and agrees.
        for (t, together) in tests.iter().zip(&shared) {
            let alone = run_tests(&ctx, "m", std::slice::from_ref(t), 0, Scope::Whole).await;
            assert_eq!(outcome(&alone[0]), outcome(together), "{}", t.name);
            assert_eq!(alone[0].sample, together.sample, "{}", t.name);
        }
        // An expression that cannot plan is its own test's error; the others
        // are still counted.
        let mut broken = tests.to_vec();
        broken.push(test(
            "no such column",
            TestKind::Expression("nope > 0".into()),
        ));
        let results = run_tests(&ctx, "m", &broken, 0, Scope::Whole).await;
        assert_eq!(results[4].status, TestStatus::Error);
        assert!(
            results[..4]
                .iter()
                .map(outcome)
                .eq(shared.iter().map(outcome))
        );
        // An incremental build's row tests count the recomputed rows only.
        let recomputed = ctx.sql("select * from m where n > 0").await.unwrap();
        ctx.register_table("m_new", recomputed.into_view()).unwrap();
        let scope = Scope::Recomputed {
            rows: "m_new",
            by: "s",
            keys: &[],
        };
        let scoped = run_tests(&ctx, "m", &tests, 0, scope).await;
        let counts: Vec<u64> = scoped.iter().map(|r| r.failing_rows).collect();
        assert_eq!(counts, [0, 1, 0, 0], "{scoped:?}");
    }

    #[tokio::test]
    async fn unique_counts_repeated_text_and_integer_keys_alike() {
        use datafusion::arrow::array::{Int64Array, StringArray};
        use std::sync::Arc;

        let ctx = SessionContext::new();
        for f in crate::udf::pure_functions() {
            ctx.register_udf(f);
        }
        for f in crate::udf::pure_aggregates() {
            ctx.register_udaf(f);
        }
        // Text keys go through key_hash first, integer keys are their own
        // 64-bit key, several columns go through row_hash.
        let batch = RecordBatch::try_from_iter([
            (
                "s",
                Arc::new(StringArray::from(vec!["a", "b", "a", "c", "a", "b", "d"])) as _,
            ),
            (
                "n",
                Arc::new(Int64Array::from(vec![1, 2, 1, 3, 4, 5, 5])) as _,
            ),
            (
                "z",
                Arc::new(Int64Array::from(vec![
                    None,
                    None,
                    None,
                    Some(2),
                    Some(3),
                    Some(4),
                    Some(5),
                ])) as _,
            ),
        ])
        .unwrap();
        ctx.register_batch("m", batch).unwrap();
        let unique = |columns: &[&str]| DataTest {
            name: format!("unique({})", columns.join(", ")),
            severity: Severity::Error,
            kind: TestKind::Unique(columns.iter().map(|c| c.to_string()).collect()),
        };
        let schema = ctx.table("m").await.unwrap().schema().as_arrow().clone();
        let sql = |columns: &[&str]| unique(columns).failing_rows_sql("m", &schema);
        assert!(sql(&["s"]).contains("repeated_keys(key_hash(\"s\"))"));
        assert!(sql(&["n"]).contains("repeated_keys(cast(\"n\" as bigint))"));
        assert!(sql(&["s", "n"]).contains("repeated_keys(row_hash(\"s\", \"n\"))"));
        let results = run_tests(
            &ctx,
            "m",
            &[
                unique(&["s"]),
                unique(&["n"]),
                unique(&["nope"]),
                unique(&["s", "n"]),
                unique(&["z"]),
                unique(&["z", "s"]),
            ],
            0,
            Scope::Whole,
        )
        .await;
        assert_eq!(
            (results[0].status, results[0].failing_rows),
            (TestStatus::Fail, 2)
        );
        let mut sample: Vec<String> = results[0].sample.iter().map(|r| r.to_string()).collect();
        sample.sort();
        assert_eq!(
            sample,
            [
                r#"{"occurrences":2,"s":"b"}"#,
                r#"{"occurrences":3,"s":"a"}"#
            ]
        );
        assert_eq!(
            (results[1].status, results[1].failing_rows),
            (TestStatus::Fail, 2)
        );
        assert_eq!(results[2].status, TestStatus::Error, "unknown column");
        // (a, 1) twice.
        assert_eq!(
            (results[3].status, results[3].failing_rows),
            (TestStatus::Fail, 1)
        );
        assert_eq!(
            results[3].sample[0].to_string(),
            r#"{"n":1,"occurrences":2,"s":"a"}"#
        );
        // One column skips NULLs; several compare them: (NULL, a) twice.
        assert_eq!(results[4].status, TestStatus::Pass);
        assert_eq!(
            (results[5].status, results[5].failing_rows),
            (TestStatus::Fail, 1)
        );

        // An incremental build wrote the rows with n >= 2: (b, 2), (c, 3),
        // (a, 4), (b, 5), (d, 5); it kept the two (a, 1).
        let recomputed = ctx.sql("select * from m where n >= 2").await.unwrap();
        ctx.register_table("m_new", recomputed.into_view()).unwrap();
        let scoped = |by, keys| Scope::Recomputed {
            rows: "m_new",
            by,
            keys,
        };
        let positive = DataTest {
            name: "n positive".into(),
            severity: Severity::Error,
            kind: TestKind::Expression("n > 1".into()),
        };
        let tests = [unique(&["s"]), unique(&["s", "n"]), positive];
        // Partitioned by s: a key's rows share a date.
        let within = run_tests(&ctx, "m", &tests, 0, scoped("s", &[])).await;
        let counts = |r: &[TestResult]| r.iter().map(|t| t.failing_rows).collect::<Vec<_>>();
        // Among the new rows alone: b twice; the kept rows (n = 1) are not tested.
        assert_eq!(counts(&within), [1, 0, 0]);
        // The new rows' keys in the whole table: a (3 rows) and b (2); the
        // repeated (a, 1) has no new row.
        let whole = run_tests(&ctx, "m", &tests, 0, scoped("z", &[])).await;
        assert_eq!(counts(&whole), [2, 0, 0]);
        // Every row of the keys s rewritten, wherever it was: within again.
        let keys = ["s".to_string()];
        let rewritten = run_tests(&ctx, "m", &tests, 0, scoped("z", &keys)).await;
        assert_eq!(counts(&rewritten), [1, 0, 0]);
        for results in [&within, &whole, &rewritten] {
            assert!(results.iter().all(|t| t.error.is_none()), "{results:?}");
        }

        // A `sql` test reads the whole table, unless per row: then the
        // recomputed rows stand under the table's name (n = 1 rows are kept).
        let sql_test = |per_row| DataTest {
            name: "n below 3".into(),
            severity: Severity::Warn,
            kind: TestKind::Sql {
                file: "t.sql".into(),
                sql: "with final as (select * from m where n < 3) select * from final;".into(),
                per_row,
            },
        };
        let tests = [sql_test(false), sql_test(true)];
        let scoped = run_tests(&ctx, "m", &tests, 0, scoped("z", &[])).await;
        assert_eq!(counts(&scoped), [3, 1], "{scoped:?}");
        let whole = run_tests(&ctx, "m", &tests, 0, Scope::Whole).await;
        assert_eq!(counts(&whole), [3, 3], "{whole:?}");
    }
}

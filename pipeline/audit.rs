//! The audit step of write–audit–publish: run a model's data tests (declared
//! in its sidecar, `crate::models::sidecar`) on a staged or published table,
//! each a query counting the failing rows, and keep a sample of them.

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use serde::Serialize;

use crate::cluster::within_cluster_limit;
use crate::engine::read_only;
use crate::error::{Error, Result, error_chain};
use crate::models::sidecar::{DataTest, Severity};

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
    for test in tests {
        let outcome = within_cluster_limit(
            cluster_seconds,
            || format!("data test {} of {table}", test.name),
            run_one(ctx, table, test, scope),
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

async fn run_one(
    ctx: &SessionContext,
    table: &str,
    test: &DataTest,
    scope: Scope<'_>,
) -> Result<(u64, Vec<serde_json::Value>)> {
    let schema = ctx.table(table).await?.schema().as_arrow().clone();
    let failing = match scope {
        Scope::Whole => test.failing_rows_sql(table, &schema),
        Scope::Recomputed { rows, by, keys } => {
            test.recomputed_rows_sql(table, rows, by, keys, &schema)
        }
    };
    let count_sql = format!("select count(*) as failing from ({failing}) as failing_rows");
    let batches = ctx
        .sql_with_options(&count_sql, read_only())
        .await?
        .collect()
        .await?;
    // A count that cannot be read is an error, never "0 failing rows".
    let count = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .filter(|a| a.is_valid(0))
                .map(|a| a.value(0))
        })
        .ok_or_else(|| {
            Error::DataFusion(DataFusionError::Internal(format!(
                "data test {} of {table}: its failing-row count did not come back as one Int64 value",
                test.name
            )))
        })?
        .max(0) as u64;
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
    use crate::models::sidecar::TestKind;

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

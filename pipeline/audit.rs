//! Data tests declared beside each model, and running them.
//!
//! A model `sql/<layer>/<name>.sql` (or a bronze source) may have a sidecar
//! `sql/<layer>/<name>.toml` declaring its grain and tests:
//!
//! ```toml
//! grain = ["customer_id"]                 # unique + not_null on these columns
//!
//! [[tests]]
//! type = "accepted_values"                # not_null | unique | accepted_values |
//! column = "customer_segment"             # relationships | expression | min_rows | sql
//! values = ["New", "VIP", "Loyal", "At Risk", "Lost", "Regular"]
//! severity = "error"                      # or "warn"; default error
//! ```
//!
//! Every test is a query returning the *failing* rows; the runner runs them on
//! the freshly staged table before publishing it (write–audit–publish).

use std::path::{Path, PathBuf};

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::error::DataFusionError;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How bad a failing test is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Blocks publishing and fails the run.
    #[default]
    Error,
    /// Reported; the table is published.
    Warn,
}

/// The sidecar file of one model, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// What one row means, for people.
    #[serde(default)]
    pub description: Option<String>,
    /// Columns that identify a row: tested `unique` and `not_null`.
    #[serde(default)]
    pub grain: Vec<String>,
    #[serde(default)]
    pub tests: Vec<TestSpec>,
}

/// One `[[tests]]` entry as written; checked into a [`DataTest`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSpec {
    #[serde(rename = "type")]
    pub kind: String,
    /// Optional name shown in results (default: derived from the test).
    pub name: Option<String>,
    #[serde(default)]
    pub severity: Severity,
    pub column: Option<String>,
    pub columns: Option<Vec<String>>,
    pub values: Option<Vec<toml::Value>>,
    pub to: Option<String>,
    pub field: Option<String>,
    pub expression: Option<String>,
    pub min: Option<u64>,
    /// For `sql` tests: a query file, relative to the models folder, returning failing rows.
    pub file: Option<PathBuf>,
}

/// A checked test.
#[derive(Debug, Clone, PartialEq)]
pub enum TestKind {
    NotNull(Vec<String>),
    Unique(Vec<String>),
    AcceptedValues {
        column: String,
        values: Vec<String>,
    },
    Relationships {
        column: String,
        to: String,
        field: String,
    },
    Expression(String),
    MinRows(u64),
    Sql {
        file: PathBuf,
        sql: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct DataTest {
    pub name: String,
    pub severity: Severity,
    pub kind: TestKind,
}

impl DataTest {
    /// Tables this test reads besides its own model.
    pub fn extra_tables(&self) -> Vec<String> {
        match &self.kind {
            TestKind::Relationships { to, .. } => vec![to.clone()],
            TestKind::Sql { sql, .. } => crate::catalog::sql_dependencies(sql).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// The query returning this test's failing rows for table `table`, whose
    /// columns are `schema` (it picks the cheaper form of a `unique` test).
    pub fn failing_rows_sql(&self, table: &str, schema: &Schema) -> String {
        let t = quote_ident(table);
        match &self.kind {
            // Never empty: parsing demands `column` or a non-empty `columns`.
            TestKind::Unique(cols) => {
                // Grouping every key is the costliest check of a run, and it
                // grows faster than the data once the hash table outgrows the
                // CPU caches (silver_events' event_id test: 0.7 s at scale 1,
                // 10.6 s at scale 10). So the repeated 64-bit keys are found
                // first with `repeated_keys` (bucketed sorting, no hash
                // table), and the exact values are grouped only among their
                // rows: a hash collision costs a few extra rows, never a
                // wrong answer. A single column skips NULLs, as dbt's
                // `unique` does; several columns compare NULLs as values,
                // as `group by` does.
                let key = |alias: &str| match cols.as_slice() {
                    [c] if is_text(schema, c) => format!("key_hash({alias}{})", quote_ident(c)),
                    [c] if is_integer(schema, c) => {
                        format!("cast({alias}{} as bigint)", quote_ident(c))
                    }
                    _ => format!("row_hash({})", column_list(cols, alias)),
                };
                let selected = column_list(cols, "b.");
                format!(
                    "with repeated as (select unnest(repeated_keys({})) as h from {t}) \
                     select {selected}, count(*) as occurrences \
                     from repeated as r inner join {t} as b on r.h = {} \
                     group by {selected} having count(*) > 1",
                    key(""),
                    key("b."),
                )
            }
            TestKind::NotNull(cols) => {
                let cond = cols
                    .iter()
                    .map(|c| format!("{} is null", quote_ident(c)))
                    .collect::<Vec<_>>()
                    .join(" or ");
                format!("select * from {t} where {cond}")
            }
            TestKind::AcceptedValues { column, values } => {
                let c = quote_ident(column);
                format!(
                    "select * from {t} where {c} is not null and {c} not in ({})",
                    values.join(", ")
                )
            }
            TestKind::Relationships { column, to, field } => {
                let (c, f) = (quote_ident(column), quote_ident(field));
                format!(
                    "select * from {t} where {c} is not null and {c} not in (select {f} from {} where {f} is not null)",
                    quote_ident(to)
                )
            }
            TestKind::Expression(expr) => {
                format!("select * from {t} where not coalesce(({expr}), false)")
            }
            TestKind::MinRows(min) => {
                format!("select count(*) as row_count from {t} having count(*) < {min}")
            }
            TestKind::Sql { sql, .. } => sql.trim().trim_end_matches(';').to_string(),
        }
    }
}

/// Whether `column` of `schema` holds text (what `key_hash` takes).
fn is_text(schema: &Schema, column: &str) -> bool {
    schema.field_with_name(column).is_ok_and(|f| {
        matches!(
            f.data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        )
    })
}

fn is_integer(schema: &Schema, column: &str) -> bool {
    schema.field_with_name(column).is_ok_and(|f| {
        matches!(
            f.data_type(),
            DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::UInt8
                | DataType::UInt16
                | DataType::UInt32
        )
    })
}

/// `alias"x", alias"y"`: the quoted columns, each after `alias` (`b.` or empty).
fn column_list(cols: &[String], alias: &str) -> String {
    cols.iter()
        .map(|c| format!("{alias}{}", quote_ident(c)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A SQL literal from a TOML value (strings quoted, numbers and booleans as is).
fn literal(value: &toml::Value) -> Result<String> {
    Ok(match value {
        toml::Value::String(s) => format!("'{}'", s.replace('\'', "''")),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => {
            return Err(Error::Config(format!(
                "accepted_values: unsupported value {other}"
            )));
        }
    })
}

/// Read `<models>/<layer>/<name>.toml` if present and check every test in it.
pub fn load_tests(spec_path: &Path, models_dir: &Path) -> Result<(ModelSpec, Vec<DataTest>)> {
    if !spec_path.exists() {
        return Ok((ModelSpec::default(), Vec::new()));
    }
    let text = std::fs::read_to_string(spec_path)
        .map_err(|e| Error::io("cannot read tests", spec_path, e))?;
    let spec: ModelSpec = toml::from_str(&text).map_err(|source| Error::ConfigParse {
        path: spec_path.to_path_buf(),
        source,
    })?;
    let mut tests = Vec::new();
    if !spec.grain.is_empty() {
        tests.push(DataTest {
            name: format!("grain unique({})", spec.grain.join(", ")),
            severity: Severity::Error,
            kind: TestKind::Unique(spec.grain.clone()),
        });
        tests.push(DataTest {
            name: format!("grain not_null({})", spec.grain.join(", ")),
            severity: Severity::Error,
            kind: TestKind::NotNull(spec.grain.clone()),
        });
    }
    for (i, t) in spec.tests.iter().enumerate() {
        let bad = |what: &str| {
            Error::Config(format!(
                "{}: test #{} ({}): {what}",
                spec_path.display(),
                i + 1,
                t.kind
            ))
        };
        let columns = || -> Result<Vec<String>> {
            match (&t.columns, &t.column) {
                (Some(cols), _) if !cols.is_empty() => Ok(cols.clone()),
                (_, Some(col)) => Ok(vec![col.clone()]),
                _ => Err(bad("needs `column` or `columns`")),
            }
        };
        let column = || t.column.clone().ok_or_else(|| bad("needs `column`"));
        let kind = match t.kind.as_str() {
            "not_null" => TestKind::NotNull(columns()?),
            "unique" => TestKind::Unique(columns()?),
            "accepted_values" => TestKind::AcceptedValues {
                column: column()?,
                values: t
                    .values
                    .as_ref()
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| bad("needs a non-empty `values` list"))?
                    .iter()
                    .map(literal)
                    .collect::<Result<_>>()?,
            },
            "relationships" => TestKind::Relationships {
                column: column()?,
                to: t
                    .to
                    .clone()
                    .ok_or_else(|| bad("needs `to` (the referenced table)"))?,
                field: t
                    .field
                    .clone()
                    .ok_or_else(|| bad("needs `field` (the referenced column)"))?,
            },
            "expression" => TestKind::Expression(
                t.expression
                    .clone()
                    .ok_or_else(|| bad("needs `expression`"))?,
            ),
            "min_rows" => TestKind::MinRows(t.min.ok_or_else(|| bad("needs `min`"))?),
            "sql" => {
                let file = t.file.clone().ok_or_else(|| bad("needs `file`"))?;
                let path = models_dir.join(&file);
                let sql = std::fs::read_to_string(&path)
                    .map_err(|e| Error::io("cannot read SQL test", &path, e))?;
                crate::catalog::sql_dependencies(&sql)
                    .map_err(|e| bad(&format!("{}: {e}", path.display())))?;
                TestKind::Sql { file, sql }
            }
            other => {
                return Err(bad(&format!(
                    "unknown test type `{other}`; expected not_null, unique, accepted_values, relationships, expression, min_rows or sql"
                )));
            }
        };
        let name = t.name.clone().unwrap_or_else(|| default_name(&kind));
        tests.push(DataTest {
            name,
            severity: t.severity,
            kind,
        });
    }
    Ok((spec, tests))
}

fn default_name(kind: &TestKind) -> String {
    match kind {
        TestKind::NotNull(c) => format!("not_null({})", c.join(", ")),
        TestKind::Unique(c) => format!("unique({})", c.join(", ")),
        TestKind::AcceptedValues { column, .. } => format!("accepted_values({column})"),
        TestKind::Relationships { column, to, field } => {
            format!("relationships({column} -> {to}.{field})")
        }
        TestKind::Expression(e) => format!("expression({e})"),
        TestKind::MinRows(n) => format!("min_rows({n})"),
        TestKind::Sql { file, .. } => format!("sql({})", file.display()),
    }
}

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

/// Run `tests` against the table registered as `table` in `ctx`; on a
/// cluster, each for at most `cluster_seconds` (0 = no limit), past which
/// the test reports an error.
pub async fn run_tests(
    ctx: &SessionContext,
    table: &str,
    tests: &[DataTest],
    cluster_seconds: u64,
) -> Vec<TestResult> {
    let mut results = Vec::with_capacity(tests.len());
    for test in tests {
        let outcome = crate::engine::within_cluster_limit(
            cluster_seconds,
            || format!("data test {} of {table}", test.name),
            run_one(ctx, table, test),
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
                error: Some(crate::runner::error_chain(&e)),
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
) -> Result<(u64, Vec<serde_json::Value>)> {
    let schema = ctx.table(table).await?.schema().as_arrow().clone();
    let failing = test.failing_rows_sql(table, &schema);
    let count_sql = format!("select count(*) as failing from ({failing}) as failing_rows");
    let batches = ctx.sql(&count_sql).await?.collect().await?;
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
        .sql(&failing)
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

    fn spec(text: &str) -> Result<Vec<DataTest>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(&path, text).unwrap();
        load_tests(&path, dir.path()).map(|(_, t)| t)
    }

    #[test]
    fn grain_expands_to_unique_and_not_null() {
        let tests = spec("grain = ['a', 'b']").unwrap();
        assert_eq!(
            tests[0].kind,
            TestKind::Unique(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            tests[1].kind,
            TestKind::NotNull(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn declarations_are_checked() {
        assert!(
            spec("[[tests]]\ntype = 'accepted_values'\ncolumn = 'x'")
                .unwrap_err()
                .to_string()
                .contains("values")
        );
        assert!(
            spec("[[tests]]\ntype = 'nonsense'")
                .unwrap_err()
                .to_string()
                .contains("unknown test type")
        );
        assert!(spec("[[tests]]\ntype = 'not_null'\ncolumn = 'x'\ncolour = 'red'").is_err());
        let t = spec("[[tests]]\ntype = 'accepted_values'\ncolumn = 's'\nvalues = ['a', \"o'k\", 3]\nseverity = 'warn'").unwrap();
        assert_eq!(t[0].severity, Severity::Warn);
        assert_eq!(
            t[0].failing_rows_sql("m", &Schema::empty()),
            "select * from \"m\" where \"s\" is not null and \"s\" not in ('a', 'o''k', 3)"
        );
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
    }
}

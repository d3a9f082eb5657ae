//! The sidecar `<model>.toml`: a model's description, grain and data tests,
//! checked when the models are loaded and turned into failing-row queries.
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

use datafusion::arrow::datatypes::{DataType, Schema};
use serde::{Deserialize, Serialize};

pub use super::period::{Days, Period};
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
    /// A bronze source's declaration, read by `ingest::sources::declaration`.
    #[serde(default)]
    pub source: Option<toml::Value>,
    /// `incremental = { by = "<date column>", lookback_days = N }`: the
    /// table is partitioned by that column and rebuilt date by date
    /// (`crate::run::incremental`). Default: none, the table is rebuilt whole.
    #[serde(default)]
    pub incremental: Option<Incremental>,
}

/// How an incremental model is partitioned and how far back a date's rows
/// reach into its inputs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incremental {
    /// The `Date32` output column the table is partitioned by.
    pub by: String,
    /// What one partition holds: `"day"` (default), or `"month"`, whose
    /// partition date is the first day of the month (`by` must hold
    /// `date_trunc('month', …)`) and whose rows read their month's input rows.
    #[serde(default)]
    pub period: Period,
    /// A row dated `d` depends on input rows dated `d - lookback_days ..= d`
    /// (to the end of its period). Default 0: on rows of its own period only.
    #[serde(default)]
    pub lookback_days: u32,
    /// A row dated `d` also reads input rows dated up to `d + lookahead_days`
    /// (a measure over the days after a row's date, as a habit window is): a
    /// whole number, or the name of a numeric variable whose value it takes,
    /// so that the window and the variable cannot drift apart. Default 0.
    #[serde(default)]
    pub lookahead_days: Option<Days>,
    /// `lookahead_days` as a number of days, resolved when the model is loaded.
    #[serde(skip)]
    pub lookahead: u32,
    /// `{ <input> = "<column>" }`: the model's rows follow that incremental
    /// input by that column (both in the model's bronze table and in the
    /// input): when dates of the input change, the rows whose column value
    /// is in those dates, before and after, are recomputed. Default: none.
    #[serde(default)]
    pub follows: std::collections::BTreeMap<String, String>,
    /// The `Date32` column that puts each row on its side of the as-of date:
    /// rows dated after it are held back, the others published. Default:
    /// `by`, so a partition is on one side whole. A monthly table whose rows
    /// carry their own day names that day, so that the month holding the
    /// as-of date is published up to that day and no further.
    #[serde(default)]
    pub as_of_by: Option<String>,
}

impl Incremental {
    /// The column compared with the as-of date (`as_of_by`, else `by`).
    pub fn as_of_column(&self) -> &str {
        self.as_of_by.as_deref().unwrap_or(&self.by)
    }
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
    /// For `sql` tests: whether a row of the model fails on its own (with the
    /// other tables it reads), so an incremental build checks its recomputed
    /// rows only. Default: false, the query reads the whole table.
    #[serde(default)]
    pub per_row: bool,
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
        per_row: bool,
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
            TestKind::Sql { sql, .. } => super::sql::sql_dependencies(sql).unwrap_or_default(),
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
                // Grouping every key is the costliest check of a run, so the
                // repeated 64-bit keys are found first with `repeated_keys`
                // (bucketed sorting, no hash table; docs/performance.md) and
                // the exact values are grouped only among their rows: a hash
                // collision costs a few extra rows, never a wrong answer. A single column skips NULLs, as dbt's
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
            TestKind::NotNull(cols) => format!("select * from {t} where {}", not_null(cols)),
            TestKind::AcceptedValues { column, values } => {
                format!("select * from {t} where {}", not_accepted(column, values))
            }
            TestKind::Expression(expr) => {
                format!("select * from {t} where {}", not_true(expr))
            }
            TestKind::Relationships { column, to, field } => {
                let (c, f) = (quote_ident(column), quote_ident(field));
                format!(
                    "select * from {t} where {c} is not null and {c} not in (select {f} from {} where {f} is not null)",
                    quote_ident(to)
                )
            }
            TestKind::MinRows(min) => {
                format!("select count(*) as row_count from {t} having count(*) < {min}")
            }
            TestKind::Sql { sql, .. } => sql.trim().trim_end_matches(';').to_string(),
        }
    }

    /// The condition on which a row fails, for the tests that judge each row
    /// on its own (`not_null`, `accepted_values`, `expression`): their
    /// failing rows are the rows where it holds, so several of them can be
    /// counted in one scan of the table (`audit::run_tests`). Never NULL
    /// but where the values list of `accepted_values` holds a NULL, which
    /// then fails no row, in the shared count as in the test alone.
    pub fn row_condition(&self) -> Option<String> {
        match &self.kind {
            TestKind::NotNull(cols) => Some(not_null(cols)),
            TestKind::AcceptedValues { column, values } => Some(not_accepted(column, values)),
            TestKind::Expression(expr) => Some(not_true(expr)),
            _ => None,
        }
    }

    /// The failing rows among the recomputed rows of an incremental build:
    /// `rows` names a table of the partitions (by date column `by`) the
    /// build wrote, `table` the whole staged table. Row tests and
    /// `relationships` read `rows` only (the kept partitions are the files
    /// that passed before). `unique` finds repeats among `rows` when a
    /// repeat cannot lie outside them: its columns hold `by` (a key lives in
    /// one date), or all of `keys`, the columns whose every row the build
    /// rewrote wherever it was; otherwise it looks the keys of `rows` up in
    /// the whole table. `min_rows` tests read the whole table, `sql` tests
    /// too unless `per_row`: then the query sees `rows` under the table's name.
    pub fn recomputed_rows_sql(
        &self,
        table: &str,
        rows: &str,
        by: &str,
        keys: &[String],
        schema: &Schema,
    ) -> String {
        let within = |cols: &[String]| {
            cols.iter().any(|c| c == by)
                || (!keys.is_empty() && keys.iter().all(|k| cols.contains(k)))
        };
        match &self.kind {
            TestKind::Sql {
                sql, per_row: true, ..
            } => format!(
                "with {} as (select * from {}) select * from ({}) as failing",
                quote_ident(table),
                quote_ident(rows),
                sql.trim().trim_end_matches(';')
            ),
            TestKind::MinRows(_) | TestKind::Sql { .. } => self.failing_rows_sql(table, schema),
            TestKind::Unique(cols) if !within(cols) => {
                let (t, r) = (quote_ident(table), quote_ident(rows));
                let selected = column_list(cols, "b.");
                // One column skips NULLs, several compare them as values
                // (as the whole-table form does).
                let on = match cols.as_slice() {
                    [c] => format!("b.{0} = c.{0}", quote_ident(c)),
                    _ => cols
                        .iter()
                        // Parenthesised: `x is not distinct from y and z` reads `y and z` as one.
                        .map(|c| format!("(b.{0} is not distinct from c.{0})", quote_ident(c)))
                        .collect::<Vec<_>>()
                        .join(" and "),
                };
                format!(
                    "with changed as (select distinct {} from {r}) \
                     select {selected}, count(*) as occurrences \
                     from {t} as b left semi join changed as c on {on} \
                     group by {selected} having count(*) > 1",
                    column_list(cols, ""),
                )
            }
            _ => self.failing_rows_sql(rows, schema),
        }
    }
}

/// A row of a `not_null` test fails when any of `cols` is NULL.
fn not_null(cols: &[String]) -> String {
    cols.iter()
        .map(|c| format!("{} is null", quote_ident(c)))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// A row of an `accepted_values` test fails when `column` holds a value
/// not listed (NULL passes).
fn not_accepted(column: &str, values: &[String]) -> String {
    let c = quote_ident(column);
    format!("{c} is not null and {c} not in ({})", values.join(", "))
}

/// A row of an `expression` test fails unless the expression is true.
fn not_true(expr: &str) -> String {
    format!("not coalesce(({expr}), false)")
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

pub(crate) fn quote_ident(name: &str) -> String {
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
        if t.per_row && t.kind != "sql" {
            return Err(bad("`per_row` is for `sql` tests only; remove it"));
        }
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
                super::sql::sql_dependencies(&sql)
                    .map_err(|e| bad(&format!("{}: {e}", path.display())))?;
                TestKind::Sql {
                    file,
                    sql,
                    per_row: t.per_row,
                }
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
}

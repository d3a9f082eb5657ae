//! Shared test support: fixtures, runs of the pipeline into a temporary
//! output root, tables read back as text with a header row and sorted rows
//! (never Parquet bytes), and the S3 server (`moto`).

pub mod moto;

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, Float64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use medallion::config::Config;
use medallion::run::{self, RunRequest, RunResults};

pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    project_root().join("tests/fixtures").join(name)
}

pub fn as_of(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// A config reading `input`, writing `output`, with the project's SQL models.
pub fn config(input: &Path, output: &Path) -> Config {
    Config {
        input: input.to_path_buf(),
        output: output.to_path_buf(),
        models: project_root().join("sql"),
        // The fixtures hold a malformed row of each kind on purpose.
        max_bad_row_fraction: 0.3,
        target_partitions: 2,
        ..Config::default()
    }
}

pub async fn run(config: Config, date: &str) -> RunResults {
    run_selected(config, date, &[], None)
        .await
        .expect("the run starts")
}

pub async fn run_selected(
    config: Config,
    date: &str,
    select: &[&str],
    layer: Option<medallion::models::Layer>,
) -> medallion::Result<RunResults> {
    run::run(RunRequest {
        config,
        as_of: as_of(date),
        select: select.iter().map(|s| s.to_string()).collect(),
        layer,
        arguments: vec!["test".into()],
        full_refresh: false,
        retry: false,
    })
    .await
}

/// `run_selected` with `--full-refresh`: build the selection even where
/// nothing changed.
pub async fn run_selected_in_full(
    config: Config,
    date: &str,
    select: &[&str],
) -> medallion::Result<RunResults> {
    run::run(RunRequest {
        config,
        as_of: as_of(date),
        select: select.iter().map(|s| s.to_string()).collect(),
        layer: None,
        arguments: vec!["test".into()],
        full_refresh: true,
        retry: false,
    })
    .await
}

/// Rows of every gold table, keyed by table, for whole-layer comparisons.
pub async fn gold_contents(output: &Path) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut tables: Vec<String> = std::fs::read_dir(output.join("gold"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    tables.sort();
    for t in tables {
        let rows = table_rows(output, "gold", &t, None).await;
        out.push((t, rows));
    }
    out
}

/// `medallion generate` data (one file per source) ending 2026-10-31, in a
/// temporary folder.
pub fn generated(scale: f64, seed: u64, dirty_rate: f64) -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    medallion::generate::generate(&medallion::generate::GenerateOptions {
        scale,
        seed,
        out: data.path().to_path_buf(),
        dirty_rate,
        end_date: as_of("2026-10-31"),
        daily: false,
    })
    .unwrap();
    data
}

/// Kill `child` (SIGKILL) as soon as `ready()` holds, or after `within`;
/// fails when the process had already ended, since then nothing was tested.
pub fn kill_when(
    mut child: std::process::Child,
    within: std::time::Duration,
    ready: impl Fn() -> bool,
) {
    use std::os::unix::process::ExitStatusExt;
    let deadline = std::time::Instant::now() + within;
    while !ready() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the run ended before it was killed: make the data larger"
    );
}

/// Copy every file under `from` to the same place under `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    for (rel, bytes) in snapshot(from) {
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, bytes).unwrap();
    }
}

/// A copy of the project's SQL models that a test may edit.
pub fn models_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&project_root().join("sql"), dir.path());
    dir
}

/// Rows of a published table (or any query over it) as `a | b | c` lines,
/// sorted. Floats print with 6 decimals; NULL prints as `NULL`.
pub async fn table_rows(output: &Path, layer: &str, table: &str, sql: Option<&str>) -> Vec<String> {
    let ctx = SessionContext::new();
    let dir = output.join(layer).join(table);
    ctx.register_parquet(
        table,
        &format!("{}/", dir.display()),
        ParquetReadOptions::default(),
    )
    .await
    .unwrap();
    let sql = sql
        .map(str::to_string)
        .unwrap_or_else(|| format!("select * from {table}"));
    query_rows(&ctx, &sql).await
}

/// Rows of a query over the tables registered in `ctx`, in the form of
/// [`table_rows`].
pub async fn query_rows(ctx: &SessionContext, sql: &str) -> Vec<String> {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in &batches {
        let formatters: Vec<Box<dyn Fn(usize) -> String>> = batch
            .columns()
            .iter()
            .map(|array| -> Box<dyn Fn(usize) -> String> {
                if array.data_type() == &DataType::Float64 {
                    let a = array
                        .as_any()
                        .downcast_ref::<Float64Array>()
                        .unwrap()
                        .clone();
                    Box::new(move |i| {
                        if a.is_null(i) {
                            "NULL".into()
                        } else {
                            format!("{:.6}", a.value(i))
                        }
                    })
                } else {
                    let array = array.clone();
                    let options = options.clone();
                    Box::new(move |i| {
                        ArrayFormatter::try_new(array.as_ref(), &options)
                            .unwrap()
                            .value(i)
                            .to_string()
                    })
                }
            })
            .collect();
        for i in 0..batch.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .map(|f| f(i))
                    .collect::<Vec<_>>()
                    .join(" | "),
            );
        }
    }
    rows.sort();
    rows
}

/// Column names and types stored in a published table's first Parquet file
/// (the Arrow schema BI readers such as pyarrow and Polars see), as `name: Type` lines.
pub async fn table_schema(output: &Path, layer: &str, table: &str) -> Vec<String> {
    let dir = output.join(layer).join(table);
    // Partition folders included (an incremental table's files are in them).
    let parts = medallion::storage::marker::parquet_files(&dir).unwrap();
    let path = dir.join(parts.first().expect("a Parquet part"));
    let file = std::fs::File::open(&path).unwrap();
    let builder =
        datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap();
    builder
        .schema()
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect()
}

/// A whole published table as text: its header row (`a | b | c`), then its
/// rows sorted, in the form of [`table_rows`].
pub async fn table_text(output: &Path, layer: &str, table: &str) -> Vec<String> {
    let header = table_schema(output, layer, table)
        .await
        .iter()
        .map(|column| column.split(": ").next().unwrap_or_default().to_string())
        .collect::<Vec<_>>()
        .join(" | ");
    let mut text = vec![header];
    text.extend(table_rows(output, layer, table, None).await);
    text
}

/// A hand-written table: the first non-empty line is the header, kept
/// first; the rows after it are sorted.
pub fn expected_table(text: &str) -> Vec<String> {
    let mut rows = expected(text);
    let first = text
        .lines()
        .map(|l| l.split('|').map(str::trim).collect::<Vec<_>>().join(" | "))
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    if let Some(i) = rows.iter().position(|r| *r == first) {
        rows.remove(i);
    }
    rows.insert(0, first);
    rows
}

/// Expected rows from a hand-written block: one row per non-empty line, sorted.
pub fn expected(text: &str) -> Vec<String> {
    let mut rows: Vec<String> = text
        .lines()
        .map(|l| l.split('|').map(str::trim).collect::<Vec<_>>().join(" | "))
        .filter(|l| !l.is_empty())
        .collect();
    rows.sort();
    rows
}

/// Every file under `dir` with its bytes, for before/after comparisons.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

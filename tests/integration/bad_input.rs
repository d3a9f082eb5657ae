//! Bad input never panics: each case gives a clear error naming the file (and
//! column) or quarantines the row, as docs/models.md §1.1 says.

use medallion::ingest::files::FileCounts;
use medallion::ingest::{self, IngestOptions, IngestReport};
use medallion::run::Status;

use crate::support::*;

/// Tiny batches and chunks: every file of more than 128 bytes is cut into
/// chunks parsed on two threads, so each case here also checks that a
/// file read in parallel gives the sequential read's rows, lines and reasons.
fn options() -> IngestOptions {
    IngestOptions {
        batch_rows: 2,
        run_id: "test".into(),
        ingested_at: 0,
        writer_properties: Default::default(),
        cancel: Default::default(),
        chunk_bytes: 64,
        workload: std::sync::Arc::new(ingest::Workload::new(2)),
    }
}

/// The project's declaration of a source (`sql/bronze/bronze_<name>.toml`).
fn declared(name: &str) -> ingest::Source {
    ingest::load_sources(&project_root().join("sql"))
        .unwrap()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap()
}

/// Ingest `bytes` as the only file of `source`.
fn ingest_bytes(
    source: &str,
    bytes: &[u8],
) -> (Result<IngestReport, medallion::Error>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(format!("{source}.csv")), bytes).unwrap();
    let source = declared(source);
    let files = ingest::discover(dir.path(), &source).unwrap();
    let result = ingest::ingest_source(
        &source,
        &files,
        &part_names(files.len()),
        &dir.path().join("bronze"),
        &dir.path().join("quarantine"),
        &options(),
    );
    (result, dir)
}

/// One part per file: `part-00000.parquet`, `part-00001.parquet`, …
fn part_names(files: usize) -> Vec<String> {
    (0..files).map(|i| format!("part-{i:05}")).collect()
}

fn message(result: Result<IngestReport, medallion::Error>) -> String {
    medallion::error::error_chain(&result.unwrap_err())
}

#[test]
fn empty_file_is_a_clear_error() {
    let (result, _dir) = ingest_bytes("orders", b"");
    let msg = message(result);
    assert!(
        msg.contains("orders.csv is empty") && msg.contains("order_id"),
        "{msg}"
    );
}

#[test]
fn header_only_file_gives_zero_rows() {
    let (result, dir) = ingest_bytes("orders", b"order_id,customer_id,order_date,status\r\n");
    assert_eq!(
        result.unwrap(),
        IngestReport {
            files: 1,
            rows: 0,
            quarantined: 0,
            quarantined_lines: 0,
            damaged: None,
            duplicate_keys: 0,
            per_file: vec![FileCounts::default()],
        }
    );
    // The file's part got no rows; the table still has one (empty) file.
    assert!(!dir.path().join("bronze/part-00000.parquet").exists());
    assert!(
        dir.path().join("bronze/empty.parquet").exists(),
        "an empty table is still a table"
    );
}

#[test]
fn missing_required_column_names_file_and_column() {
    let (result, _dir) = ingest_bytes("orders", b"order_id,customer_id,status\n1,2,shipped\n");
    let msg = message(result);
    assert!(
        msg.contains("orders.csv") && msg.contains("`order_date`") && msg.contains("add it"),
        "{msg}"
    );
}

#[test]
fn optional_columns_may_be_absent_and_extra_columns_are_ignored() {
    let (result, _dir) = ingest_bytes("orders", "\u{feff}Status , ORDER_ID,customer_id,order_date,note\nshipped,1,2,2026-01-01 00:00:00,hello\n".as_bytes());
    assert_eq!(result.unwrap().rows, 1);
}

#[test]
fn invalid_utf8_in_a_row_is_quarantined_and_in_the_header_is_an_error() {
    let (result, _dir) = ingest_bytes(
        "product_categories",
        b"category_id,category_name\n1,Ok\n2,Bad \xff\xfe name\n",
    );
    assert_eq!(
        result.unwrap(),
        IngestReport {
            files: 1,
            rows: 1,
            quarantined: 1,
            quarantined_lines: 1,
            damaged: None,
            duplicate_keys: 0,
            per_file: vec![FileCounts {
                rows: 1,
                quarantined: 1,
                quarantined_lines: 1,
            }],
        }
    );
    let (result, _dir) = ingest_bytes(
        "product_categories",
        b"category_id,categ\xffory_name\n1,Ok\n",
    );
    let msg = message(result);
    assert!(
        msg.contains("not valid UTF-8") && msg.contains("product_categories.csv"),
        "{msg}"
    );
}

#[test]
fn binary_file_named_csv_is_a_clear_error() {
    // The first bytes of a gzip stream and some zeros.
    let mut bytes = vec![0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03];
    bytes.extend([0u8; 64]);
    bytes.extend(b"\n\x00\x01\x02,\xff\n");
    let (result, _dir) = ingest_bytes("orders", &bytes);
    let msg = message(result);
    assert!(msg.contains("orders.csv"), "{msg}");
    assert!(msg.contains("binary") || msg.contains("UTF-8"), "{msg}");
}

#[test]
fn too_many_bad_rows_fail_the_source() {
    let report = IngestReport {
        files: 1,
        rows: 94,
        quarantined: 6,
        quarantined_lines: 6,
        damaged: None,
        duplicate_keys: 0,
        per_file: Vec::new(),
    };
    let err = report.check_bad_fraction("orders", 0.05).unwrap_err();
    assert!(err.to_string().contains("6 of 100 lines"), "{err}");
    let report = IngestReport {
        files: 1,
        rows: 95,
        quarantined: 5,
        quarantined_lines: 5,
        damaged: None,
        duplicate_keys: 0,
        per_file: Vec::new(),
    };
    report.check_bad_fraction("orders", 0.05).unwrap();
}

#[test]
fn a_folder_of_daily_files_is_read_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let daily = dir.path().join("bt_users_transactions");
    std::fs::create_dir_all(&daily).unwrap();
    std::fs::write(
        daily.join("2026-10-02.csv"),
        "user_id,transaction_dt,type\n1,2026-10-02 10:00:00,1\n",
    )
    .unwrap();
    std::fs::write(
        daily.join("2026-10-01.csv"),
        "user_id,type,transaction_dt\n1,8,2026-10-01T10:00:00Z\n2,9,2026-10-01T10:00:00Z\n",
    )
    .unwrap();
    std::fs::write(daily.join("_notes.txt"), "not data").unwrap();
    let source = declared("bt_users_transactions");
    let files = ingest::discover(dir.path(), &source).unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "bt_users_transactions/2026-10-01.csv",
            "bt_users_transactions/2026-10-02.csv"
        ]
    );
    let report = ingest::ingest_source(
        &source,
        &files,
        &part_names(files.len()),
        &dir.path().join("b"),
        &dir.path().join("q"),
        &options(),
    )
    .unwrap();
    assert_eq!(
        report,
        IngestReport {
            files: 2,
            rows: 3,
            quarantined: 0,
            quarantined_lines: 0,
            damaged: None,
            duplicate_keys: 0,
            per_file: vec![
                FileCounts {
                    rows: 2,
                    ..FileCounts::default()
                },
                FileCounts {
                    rows: 1,
                    ..FileCounts::default()
                },
            ],
        }
    );
}

#[tokio::test]
async fn a_broken_source_fails_itself_and_its_dependants_only() {
    let input = tempfile::tempdir().unwrap();
    copy_tree(&fixture("shop"), input.path());
    std::fs::write(
        input.path().join("reviews.csv"),
        b"review_id,product_id\n1,2\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let results = run(config(input.path(), out.path()), "2026-10-31").await;
    let err = results.outcome().unwrap_err();
    assert_eq!(err.exit_code(), medallion::error::exit::INPUT, "{err}");
    let model = |name: &str| {
        results
            .models
            .iter()
            .find(|m| m.name == name)
            .unwrap()
            .clone()
    };
    assert_eq!(model("bronze_reviews").status, Status::Error);
    assert!(model("bronze_reviews").error.unwrap().contains("`rating`"));
    assert_eq!(model("gold_product_performance").status, Status::Skipped);
    assert_eq!(model("gold_sales_daily").status, Status::Success);
}

/// A stray quote at the start of a field swallows the lines after it into
/// one record: every swallowed line counts, so the source fails naming the
/// file and line instead of landing a fraction of its rows with exit 0.
#[test]
fn a_quote_that_never_closes_counts_every_line_it_swallows() {
    let mut csv = String::from("order_id,customer_id,order_date,status\n");
    for i in 1..=100 {
        let status = if i == 10 { "\"shipped" } else { "shipped" };
        csv.push_str(&format!("{i},1,2026-10-01 10:00:00,{status}\n"));
    }
    let (result, dir) = ingest_bytes("orders", csv.as_bytes());
    let report = result.unwrap();
    assert_eq!((report.rows, report.quarantined), (9, 1));
    // Line 11 (order 10) to the end of the file, line 101.
    assert_eq!(report.quarantined_lines, 91);
    assert_eq!(report.damaged, Some(("orders.csv".to_string(), 11, 91)));
    let err = report
        .check_bad_fraction("orders", 0.05)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("91 of 100 lines") && err.contains("orders.csv line 11 spans 91 lines"),
        "{err}"
    );
    let reasons = tokio::runtime::Runtime::new().unwrap().block_on(table_rows(
        dir.path(),
        ".",
        "quarantine",
        Some("select _source_line, reason from quarantine"),
    ));
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].starts_with("11 | "), "{reasons:?}");
    assert!(reasons[0].contains("spans lines 11-101"), "{reasons:?}");
    // A quoted line break inside a field is one good record over two lines.
    let (result, _dir) = ingest_bytes(
        "reviews",
        b"review_id,product_id,rating,review_date,review_text\n1,1,5,2026-10-01,\"great\nphone\"\n2,1,4,2026-10-02,ok\n",
    );
    let report = result.unwrap();
    assert_eq!(
        (report.rows, report.quarantined, report.quarantined_lines),
        (2, 0, 0)
    );
}

/// Lines ending in a carriage return alone are lines, with their numbers.
#[test]
fn a_file_with_cr_only_line_ends_is_read_line_by_line() {
    let lf = "order_id,customer_id,order_date,status\n1,1,2026-10-01 10:00:00,shipped\n2,1,2026-10-01 11:00:00,bogus\n3,2,2026-10-02 10:00:00,delivered\n";
    let (result, dir) = ingest_bytes("orders", lf.replace('\n', "\r").as_bytes());
    let report = result.unwrap();
    assert_eq!((report.rows, report.quarantined), (2, 1));
    let lines = tokio::runtime::Runtime::new().unwrap().block_on(table_rows(
        dir.path(),
        ".",
        "quarantine",
        Some("select _source_line from quarantine"),
    ));
    assert_eq!(lines, vec!["3"]);
}

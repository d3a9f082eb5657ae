//! Declared sources (docs/models.md §1.5) through the release binary, with
//! no Rust change: a project of text files only (three sources in CSV,
//! NDJSON and Parquet, a silver and a gold model) runs and lands exactly
//! the hand-computed rows; every kind of wrong declaration is refused with
//! exit 2 naming the file and the key, before anything is written;
//! `medallion init` writes a project that runs as it is; `medallion sources`
//! lists what is declared.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Date32Array, Float64Array, RecordBatch, StringArray};
use datafusion::parquet::arrow::ArrowWriter;

use crate::support::*;

fn medallion(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medallion"))
        .current_dir(cwd)
        .args(args)
        .env_remove("MEDALLION_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const SHIPMENTS: &str = r#"
description = "Parcels handed to carriers, a folder of daily drops separated by semicolons."

[source]
path = "shipments"
delimiter = ";"
primary_key = ["carrier", "tracking"]
latest_by = "scanned_at"

[[source.columns]]
name = "carrier"
type = "str"
values = ["dhl", "ups"]

[[source.columns]]
name = "tracking"
type = "str"
pattern = "[A-Z]{2}[0-9]{6}"

[[source.columns]]
name = "weight_kg"
type = "float"
required = true
min = 0
max = 1000

[[source.columns]]
name = "cost"
type = "dec(10,3)"
required = true
min = 0

[[source.columns]]
name = "scanned_at"
type = "ts"
required = true

[[source.columns]]
name = "fragile"
type = "bool"
"#;

/// A project of three sources, a silver and a gold model, as files.
fn project(root: &Path) {
    write(root, "sql/bronze/bronze_shipments.toml", SHIPMENTS);
    // Day 1: two good dhl parcels, a ups one, then a carrier outside the
    // list and a tracking number that does not match the pattern. The
    // `internal` column is not declared: ignored.
    write(
        root,
        "data/shipments/2026-11-01.csv",
        "carrier;tracking;weight_kg;cost;scanned_at;fragile;internal\n\
         dhl;AB000001;2.5;10.125;2026-11-01T08:00:00Z;yes;x\n\
         dhl;AB000002;1.0;5.000;2026-11-01T09:00:00Z;no;x\n\
         ups;CD000001;10;40.5;2026-11-01T10:00:00Z;;x\n\
         fedex;EF000001;3;12;2026-11-01T11:00:00Z;no;x\n\
         ups;bad123;3;12;2026-11-01T12:00:00Z;no;x\n",
    );
    // Day 2: a newer scan of dhl AB000002 (it wins), the same tracking
    // number at another carrier (another key), a negative weight and a cost
    // that is not a number.
    write(
        root,
        "data/shipments/2026-11-02.csv",
        "carrier;tracking;weight_kg;cost;scanned_at;fragile;internal\n\
         dhl;AB000002;1.5;6.250;2026-11-02T09:00:00Z;no;y\n\
         ups;AB000001;4;20;2026-11-02T10:00:00Z;yes;y\n\
         ups;CD000002;-1;5;2026-11-02T11:00:00Z;no;y\n\
         dhl;AB000003;2;abc;2026-11-02T12:00:00Z;no;y\n",
    );
    write(
        root,
        "sql/bronze/bronze_returns.toml",
        r#"
[source]
format = "ndjson"
primary_key = "tracking"

[[source.columns]]
name = "tracking"
type = "str"

[[source.columns]]
name = "returned_on"
type = "date"
required = true

[[source.columns]]
name = "reason"
type = "str"
"#,
    );
    write(
        root,
        "data/returns.ndjson",
        "{\"tracking\": \"AB000001\", \"returned_on\": \"2026-11-03\", \"reason\": \"damaged\"}\n\
         {\"tracking\": \"CD000001\", \"returned_on\": \"not a date\"}\n\
         this is not json\n\
         {\"tracking\": \"AB000002\", \"returned_on\": \"2026-11-05\", \"reason\": null, \"extra\": {\"a\": 1}}\n\
         \n\
         {\"tracking\": \"CD000009\", \"returned_on\": \"2026-11-06\", \"reason\": \"late\"}\n",
    );
    write(
        root,
        "sql/bronze/bronze_rates.toml",
        r#"
[source]
format = "parquet"
path = "tariffs/rates.parquet"

[[source.columns]]
name = "carrier"
type = "str"
required = true

[[source.columns]]
name = "rate"
type = "dec"
min = 0

[[source.columns]]
name = "valid_from"
type = "date"
"#,
    );
    let batch = RecordBatch::try_from_iter([
        (
            "Carrier",
            Arc::new(StringArray::from(vec!["dhl", "ups", "ups"])) as ArrayRef,
        ),
        (
            "rate",
            Arc::new(Float64Array::from(vec![Some(1.25), Some(-3.0), None])) as ArrayRef,
        ),
        (
            "valid_from",
            Arc::new(Date32Array::from(vec![20_393, 20_394, 20_395])) as ArrayRef,
        ),
    ])
    .unwrap();
    std::fs::create_dir_all(root.join("data/tariffs")).unwrap();
    let file = std::fs::File::create(root.join("data/tariffs/rates.parquet")).unwrap();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();

    write(
        root,
        "sql/silver/silver_shipments.sql",
        "with latest as (\n    select * from {{ latest_rows('bronze_shipments') }} as s\n),\n\n\
         final as (\n    select carrier, tracking, weight_kg, cost, coalesce(fragile, false) as fragile\n    from latest\n)\n\n\
         select * from final\n",
    );
    write(
        root,
        "sql/silver/silver_shipments.toml",
        "grain = [\"carrier\", \"tracking\"]\n",
    );
    write(
        root,
        "sql/gold/gold_carrier_totals.sql",
        "with shipments as (\n    select * from silver_shipments\n),\n\n\
         final as (\n    select carrier, count(*) as parcels, sum(weight_kg) as weight_kg, sum(cost) as cost,\n\
         count(case when fragile then 1 end) as fragile_parcels\n    from shipments\n    group by carrier\n)\n\n\
         select * from final\n",
    );
    write(
        root,
        "sql/gold/gold_carrier_totals.toml",
        "grain = [\"carrier\"]\n\n[[tests]]\ntype = \"expression\"\nexpression = \"cost >= 0\"\n",
    );
}

fn run_project(root: &Path, out: &Path) -> Output {
    medallion(
        root,
        &[
            "--quiet",
            "run",
            "--input",
            "data",
            "--models",
            "sql",
            "--output",
            out.to_str().unwrap(),
            "--as-of",
            "2026-11-30",
            "--max-bad-row-fraction",
            "0.5",
        ],
    )
}

#[tokio::test]
async fn a_project_of_text_files_lands_its_sources_and_models() {
    let root = tempfile::tempdir().unwrap();
    project(root.path());
    let out = root.path().join("out");
    let output = run_project(root.path(), &out);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // dhl: AB000001 (2.5 kg, 10.125, fragile) + AB000002's newer scan
    // (1.5 kg, 6.250) = 2 parcels, 4 kg, 16.375; ups: CD000001 (10 kg, 40.5,
    // fragile empty = false) + AB000001 (4 kg, 20, fragile) = 2, 14 kg, 60.5.
    assert_eq!(
        table_text(&out, "gold", "gold_carrier_totals").await,
        expected_table(
            "
            carrier | parcels | weight_kg | cost | fragile_parcels
            dhl | 2 | 4.000000 | 16.375 | 1
            ups | 2 | 14.000000 | 60.500 | 1
            "
        )
    );
    assert_eq!(
        table_schema(&out, "bronze", "bronze_shipments").await[..6],
        [
            "carrier: Utf8",
            "tracking: Utf8",
            "weight_kg: Float64",
            "cost: Decimal128(10, 3)",
            "scanned_at: Timestamp(µs, \"UTC\")",
            "fragile: Boolean",
        ]
    );
    assert_eq!(
        table_rows(
            &out,
            "_quarantine",
            "shipments",
            Some("select _source_file, _source_line, reason from shipments")
        )
        .await,
        expected(
            "
            shipments/2026-11-01.csv | 5 | column `carrier`: `fedex` is not one of dhl, ups
            shipments/2026-11-01.csv | 6 | column `tracking`: `bad123` does not match the pattern `[A-Z]{2}[0-9]{6}`
            shipments/2026-11-02.csv | 4 | column `weight_kg`: `-1` is outside 0..1000
            shipments/2026-11-02.csv | 5 | column `cost`: `abc` is not a decimal number
            "
        )
    );

    // NDJSON: three objects land (null and a nested extra key are fine).
    assert_eq!(
        table_rows(
            &out,
            "bronze",
            "bronze_returns",
            Some("select tracking, returned_on, reason, _source_line from bronze_returns")
        )
        .await,
        expected(
            "
            AB000001 | 2026-11-03 | damaged | 1
            AB000002 | 2026-11-05 | NULL | 4
            CD000009 | 2026-11-06 | late | 6
            "
        )
    );
    let returns = table_rows(
        &out,
        "_quarantine",
        "returns",
        Some("select _source_line, reason from returns"),
    )
    .await;
    assert_eq!(returns.len(), 2, "{returns:?}");
    assert!(
        returns[0].starts_with("2 | column `returned_on`: `not a date`"),
        "{returns:?}"
    );
    assert!(returns[1].starts_with("3 | not valid JSON"), "{returns:?}");

    // Parquet: the header is matched case-insensitively; a negative rate
    // is quarantined with the row number; a NULL rate lands as NULL.
    assert_eq!(
        table_rows(
            &out,
            "bronze",
            "bronze_rates",
            Some("select carrier, rate, valid_from, _source_line from bronze_rates")
        )
        .await,
        expected(
            "
            dhl | 1.25 | 2025-11-01 | 1
            ups | NULL | 2025-11-03 | 3
            "
        )
    );
    assert_eq!(
        table_rows(
            &out,
            "_quarantine",
            "rates",
            Some("select _source_file, _source_line, reason, raw_values from rates")
        )
        .await,
        [
            "tariffs/rates.parquet | 2 | column `rate`: `-3.0` is below the minimum 0 | ups,-3.0,2025-11-02"
        ]
    );

    // `medallion sources --format json` lists the three, keys resolved.
    let listed = medallion(
        root.path(),
        &[
            "sources", "--models", "sql", "--input", "data", "--format", "json",
        ],
    );
    assert!(listed.status.success());
    let json: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let names: Vec<&str> = json["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["rates", "returns", "shipments"]);
    let shipments = &json["sources"][2];
    assert_eq!(
        shipments["primary_key"],
        serde_json::json!(["carrier", "tracking"])
    );
    assert_eq!(shipments["delimiter"], ";");
    assert_eq!(shipments["columns"][1]["pattern"], "[A-Z]{2}[0-9]{6}");

    // The lineage names each source's files.
    let lineage = medallion(root.path(), &["lineage", "--models", "sql"]);
    let text = String::from_utf8_lossy(&lineage.stdout);
    assert!(
        text.contains("bronze_rates") && text.contains("tariffs/rates.parquet"),
        "{text}"
    );
}

#[tokio::test]
async fn a_wrong_declaration_is_refused_before_anything_is_written() {
    let cases: [(&str, &str, &[&str]); 6] = [
        (
            "primary_key = [\"carrier\", \"tracking\"]",
            "primary_kee = [\"carrier\", \"tracking\"]",
            &["bronze_shipments.toml", "unknown field `primary_kee`"],
        ),
        (
            "type = \"float\"",
            "type = \"double\"",
            &[
                "bronze_shipments.toml",
                "[source] columns[2] (`weight_kg`) type",
                "`double` is not a type",
            ],
        ),
        (
            "primary_key = [\"carrier\", \"tracking\"]",
            "primary_key = [\"carrier\", \"parcel\"]",
            &[
                "bronze_shipments.toml",
                "[source] primary_key",
                "`parcel` is not one of the declared columns",
            ],
        ),
        (
            "pattern = \"[A-Z]{2}[0-9]{6}\"",
            "pattern = \"[A-Z]{2\"",
            &[
                "bronze_shipments.toml",
                "[source] columns[1] (`tracking`) pattern",
                "not a regular expression",
            ],
        ),
        (
            "latest_by = \"scanned_at\"",
            "latest_by = \"scanned\"",
            &[
                "bronze_shipments.toml",
                "[source] latest_by",
                "`scanned` is not one of the declared columns",
            ],
        ),
        (
            "path = \"shipments\"",
            "path = \"returns\"",
            &[
                "bronze_shipments.toml",
                "[source] path",
                "already the path of source `returns`",
            ],
        ),
    ];
    for (from, to, needles) in cases {
        let root = tempfile::tempdir().unwrap();
        project(root.path());
        assert!(SHIPMENTS.contains(from), "{from}");
        write(
            root.path(),
            "sql/bronze/bronze_shipments.toml",
            &SHIPMENTS.replace(from, to),
        );
        let out = root.path().join("out");
        let output = run_project(root.path(), &out);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{to}: {stderr}");
        for needle in needles {
            assert!(stderr.contains(needle), "{to}: `{needle}` not in {stderr}");
        }
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            !out.join("bronze").exists() && !out.join("_quarantine").exists(),
            "{to}: nothing may be written"
        );
    }
}

#[tokio::test]
async fn init_writes_a_project_that_runs_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("shop");
    let init = medallion(dir.path(), &["init", "shop"]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let run = medallion(&project, &["--quiet", "run", "--as-of", "2026-11-30"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out = project.join("artifacts");
    // Spend line 7 was sent again with a later updated_at: 128.90 wins.
    assert_eq!(
        table_rows(
            &out,
            "gold",
            "gold_marketing_daily",
            Some("select count(*), sum(spend), sum(clicks) from gold_marketing_daily")
        )
        .await,
        ["21 | 1537.44 | 5821"]
    );
    assert_eq!(
        table_rows(
            &out,
            "_quarantine",
            "marketing_spend",
            Some("select _source_line, reason from marketing_spend")
        )
        .await,
        ["24 | column `channel`: `radio` is not one of search, social, email"]
    );
    // A second init into the same folder overwrites nothing.
    let again = medallion(dir.path(), &["init", "shop"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));
}

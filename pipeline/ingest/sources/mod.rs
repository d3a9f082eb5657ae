//! A declared source (docs/models.md §1.5): where its files are, how to read
//! them, its typed columns, primary key and the value checks whose failure
//! quarantines a row.
//!
//! Sources are declared in `sql/bronze/bronze_<source>.toml` and compiled
//! once, before any data is read, by [`declaration`]: names are resolved to
//! positions, ranges to the column's scaled type and patterns to regular
//! expressions, so the per-row path compares numbers and never looks a name up.

mod column_spec;
pub mod declaration;

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

pub use declaration::{load_sources, source_files_of};

/// Largest int a range check reports as a capacity limit ("above the
/// maximum … (larger values cannot be computed with)") rather than as
/// "outside lo..hi": ranges reaching it are limits, not business rules.
pub const QUANTITY_MAX: i64 = 1_000_000;
/// The same for decimals, unscaled: one billion.
pub const MONEY_MAX_UNITS: f64 = 1_000_000_000.0;

/// The type of a column as landed in bronze.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Int,
    Float,
    /// Decimal128(precision, scale).
    Dec(u8, i8),
    Str,
    Date,
    Ts,
    Bool,
}

impl ColType {
    pub fn arrow_type(self) -> DataType {
        match self {
            ColType::Int => DataType::Int64,
            ColType::Float => DataType::Float64,
            ColType::Dec(precision, scale) => DataType::Decimal128(precision, scale),
            ColType::Str => DataType::Utf8,
            ColType::Date => DataType::Date32,
            ColType::Ts => utc_micros(),
            ColType::Bool => DataType::Boolean,
        }
    }

    /// The name a declaration writes (`int`, `dec(18,4)`, …).
    pub fn declared_name(self) -> String {
        match self {
            ColType::Int => "int".into(),
            ColType::Float => "float".into(),
            ColType::Dec(18, 2) => "dec".into(),
            ColType::Dec(p, s) => format!("dec({p},{s})"),
            ColType::Str => "str".into(),
            ColType::Date => "date".into(),
            ColType::Ts => "ts".into(),
            ColType::Bool => "bool".into(),
        }
    }
}

/// `Timestamp(µs, "UTC")`, the storage type of every timestamp (docs/models.md §2).
pub fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// An inclusive range on the column's stored value (decimals scaled).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Range {
    Int(Option<i64>, Option<i64>),
    Dec(Option<i128>, Option<i128>),
    Float(Option<f64>, Option<f64>),
}

/// The checks of one column; every one that is set must pass.
#[derive(Debug, Clone, Default)]
pub struct Checks {
    pub range: Option<Range>,
    /// Allowed values as declared, compared case-insensitively; empty: any.
    pub values: Vec<String>,
    /// The whole trimmed value must match (anchored when compiled).
    pub pattern: Option<regex::Regex>,
    /// The declared pattern, for messages.
    pub pattern_text: Option<String>,
    /// A value that does not parse or fails a check lands as NULL instead
    /// of quarantining the row (`invalid = "null"`).
    pub invalid_null: bool,
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub ty: ColType,
    /// A required column must be in the header and non-empty on every row.
    pub required: bool,
    pub primary_key: bool,
    pub checks: Checks,
}

/// How a source's files are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    /// One JSON object per line.
    Ndjson,
    Parquet,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
            Format::Parquet => "parquet",
        }
    }

    /// File-name endings of the format, lower case.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Format::Csv => &[".csv"],
            Format::Ndjson => &[".ndjson", ".jsonl", ".json"],
            Format::Parquet => &[".parquet"],
        }
    }
}

/// The CSV dialect of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    pub delimiter: u8,
    pub quote: u8,
    /// Without a header, fields are the declared columns in order.
    pub header: bool,
}

impl Default for Dialect {
    fn default() -> Self {
        Dialect {
            delimiter: b',',
            quote: b'"',
            header: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    /// The declaration it came from, for messages.
    pub declared_in: std::path::PathBuf,
    pub description: Option<String>,
    /// Under the input root: `<path>.<ext>` and/or the folder `<path>/`, or
    /// the file `<path>` itself when it names one.
    pub path: String,
    pub format: Format,
    pub dialect: Dialect,
    pub columns: Vec<Column>,
    /// Of two rows with one primary key, the one with the latest value of
    /// this column wins (then the later file and line); `None`: the later
    /// file and line.
    pub latest_by: Option<String>,
    /// A file column the declaration lacks fails the source (else ignored).
    pub fail_on_unknown_columns: bool,
}

impl Source {
    pub fn bronze_table(&self) -> String {
        format!("bronze_{}", self.name)
    }

    /// Where the source's files are looked for under `input`, for people.
    pub fn inputs(&self, input: &std::path::Path) -> String {
        let base = input.join(self.path.trim_matches('/'));
        let base = base.display();
        let ext = self.format.extensions()[0];
        format!("{base}{ext} or {base}/*{ext} ({})", self.format.as_str())
    }

    /// The primary key's columns, in declared order (empty: no key).
    pub fn primary_key(&self) -> Vec<&Column> {
        self.columns.iter().filter(|c| c.primary_key).collect()
    }

    /// The bronze schema: typed source columns, then the lineage columns.
    pub fn bronze_schema(&self) -> SchemaRef {
        let mut fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| Field::new(&c.name, c.ty.arrow_type(), !c.required))
            .collect();
        fields.extend(lineage_fields());
        Arc::new(Schema::new(fields))
    }
}

/// `_source_file`, `_source_line`, `_ingested_at`, `_run_id` (docs/models.md §2).
pub fn lineage_fields() -> Vec<Field> {
    vec![
        Field::new("_source_file", DataType::Utf8, false),
        Field::new("_source_line", DataType::Int64, false),
        Field::new("_ingested_at", utc_micros(), false),
        Field::new("_run_id", DataType::Utf8, false),
    ]
}

/// The quarantine table of every source: where, what and why.
pub fn quarantine_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("reason", DataType::Utf8, false),
        Field::new("raw_values", DataType::Utf8, false),
    ];
    fields.extend(lineage_fields());
    Arc::new(Schema::new(fields))
}

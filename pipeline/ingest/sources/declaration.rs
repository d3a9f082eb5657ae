//! Source declarations: the `[source]` table of `sql/bronze/bronze_<name>.toml`
//! read, checked and compiled into a [`Source`] before any data is read.
//!
//! Every mistake is a config error (exit 2) naming the file and the key:
//! an unknown key, an unknown type, a check that does not fit the column's
//! type, a primary key or `latest_by` that is not a column, a bad regular
//! expression, two sources claiming the same files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::column_spec::{ColumnSpec, compile_column};
use super::{Column, Dialect, Format, Source};
use crate::error::{Error, Result};

/// The sidecar as far as sources are concerned; its tests are read by
/// `models::sidecar`.
#[derive(Debug, Deserialize)]
struct Sidecar {
    description: Option<String>,
    source: Option<SourceSpec>,
}

/// `[source]` as written (docs/configuration.md, "Declaring a source").
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceSpec {
    path: Option<String>,
    #[serde(default = "csv")]
    format: String,
    delimiter: Option<String>,
    quote: Option<String>,
    header: Option<bool>,
    #[serde(default)]
    primary_key: KeySpec,
    latest_by: Option<String>,
    #[serde(default = "ignore")]
    unknown_columns: String,
    #[serde(default)]
    columns: Vec<ColumnSpec>,
}

/// `primary_key = "id"` or `["a", "b"]`.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum KeySpec {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

fn csv() -> String {
    "csv".into()
}
fn ignore() -> String {
    "ignore".into()
}

/// Every source declared under `<models>/bronze/`, in name order. A bronze
/// sidecar without `[source]` (data tests of an Amplitude table) declares none.
pub fn load_sources(models_dir: &Path) -> Result<Vec<Source>> {
    let dir = models_dir.join("bronze");
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io("cannot list source declarations", &dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut sources = Vec::new();
    for path in paths {
        if let Some(source) = load_one(&path)? {
            sources.push(source);
        }
    }
    // Two sources reading the same files would land every row twice.
    let mut claimed: BTreeMap<String, &Source> = BTreeMap::new();
    for source in &sources {
        let key = source.path.trim_matches('/').to_ascii_lowercase();
        if let Some(first) = claimed.insert(key, source) {
            return Err(Error::Config(format!(
                "{}: [source] path: `{}` is already the path of source `{}` ({}); \
                 two sources cannot read the same files, give one of them another path",
                source.declared_in.display(),
                source.path,
                first.name,
                first.declared_in.display()
            )));
        }
    }
    Ok(sources)
}

/// The files a source's path names under `input`, as `(path, name)` where
/// the name is `/`-separated and relative to `input`.
pub fn source_files_of(source: &Source, input: &Path) -> Result<Vec<(PathBuf, String)>> {
    let path = source.path.trim_matches('/');
    let exact = input.join(path);
    if exact.is_file() {
        return Ok(vec![(exact, path.to_string())]);
    }
    let mut files = Vec::new();
    for ext in source.format.extensions() {
        let single = input.join(format!("{path}{ext}"));
        if single.is_file() {
            files.push((single, format!("{path}{ext}")));
        }
    }
    if exact.is_dir() {
        let entries = std::fs::read_dir(&exact)
            .map_err(|e| Error::io("cannot list source folder", &exact, e))?;
        let mut daily = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("cannot list source folder", &exact, e))?;
            let file = entry.path();
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let hidden = file_name.starts_with('.') || file_name.starts_with('_');
            let lower = file_name.to_ascii_lowercase();
            if file.is_file()
                && !hidden
                && source
                    .format
                    .extensions()
                    .iter()
                    .any(|e| lower.ends_with(e))
            {
                daily.push((file, format!("{path}/{file_name}")));
            }
        }
        daily.sort_by(|a, b| a.1.cmp(&b.1));
        files.extend(daily);
    }
    Ok(files)
}

fn load_one(path: &Path) -> Result<Option<Source>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io("cannot read source declaration", path, e))?;
    // The sidecar's other keys (grain, tests) are checked by models::sidecar.
    let value: toml::Table = toml::from_str(&text).map_err(|source| Error::ConfigParse {
        path: path.to_path_buf(),
        source,
    })?;
    let sidecar: Sidecar = value.try_into().map_err(|source| Error::ConfigParse {
        path: path.to_path_buf(),
        source,
    })?;
    let Some(spec) = sidecar.source else {
        return Ok(None);
    };
    let file_stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some(name) = file_stem.strip_prefix("bronze_").filter(|n| !n.is_empty()) else {
        return bad(
            path,
            "",
            "a source declaration must be named bronze_<source>.toml".into(),
        );
    };
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return bad(
            path,
            "",
            format!(
                "the source name `{name}` (from the file name) must be lower-case letters, digits and `_`"
            ),
        );
    }
    let format = match spec.format.as_str() {
        "csv" => Format::Csv,
        "ndjson" => Format::Ndjson,
        "parquet" => Format::Parquet,
        other => {
            return bad(
                path,
                "format",
                format!("`{other}` is not one of csv, ndjson, parquet"),
            );
        }
    };
    let byte = |key: &str, value: &Option<String>, default: u8| -> Result<u8> {
        match value.as_deref() {
            None => Ok(default),
            Some(v) if v.len() == 1 && v.is_ascii() => Ok(v.as_bytes()[0]),
            Some("\\t") => Ok(b'\t'),
            Some(v) => bad(
                path,
                key,
                format!("`{v}` must be one ASCII character (or \"\\t\")"),
            ),
        }
    };
    let dialect = Dialect {
        delimiter: byte("delimiter", &spec.delimiter, b',')?,
        quote: byte("quote", &spec.quote, b'"')?,
        header: spec.header.unwrap_or(true),
    };
    if format != Format::Csv
        && (spec.delimiter.is_some() || spec.quote.is_some() || spec.header.is_some())
    {
        return bad(
            path,
            "delimiter",
            format!(
                "delimiter, quote and header apply to csv sources, not {}",
                format.as_str()
            ),
        );
    }
    let fail_on_unknown_columns = match spec.unknown_columns.as_str() {
        "ignore" => false,
        "fail" => true,
        other => {
            return bad(
                path,
                "unknown_columns",
                format!("`{other}` is not ignore or fail"),
            );
        }
    };
    if spec.columns.is_empty() {
        return bad(
            path,
            "columns",
            "declare at least one [[source.columns]] with name and type".into(),
        );
    }
    let key: Vec<String> = match spec.primary_key {
        KeySpec::None => Vec::new(),
        KeySpec::One(k) => vec![k],
        KeySpec::Many(k) => k,
    };
    let mut columns: Vec<Column> = Vec::with_capacity(spec.columns.len());
    for (i, c) in spec.columns.iter().enumerate() {
        let at = format!("columns[{i}] (`{}`)", c.name);
        let column = compile_column(c, key.contains(&c.name))
            .or_else(|(k, m)| bad(path, &format!("{at} {k}"), m))?;
        if columns.iter().any(|other| other.name == column.name) {
            return bad(path, &at, "this column is declared twice".into());
        }
        columns.push(column);
    }
    for k in &key {
        if !columns.iter().any(|c| &c.name == k) {
            return bad(
                path,
                "primary_key",
                format!(
                    "`{k}` is not one of the declared columns ({})",
                    names(&columns)
                ),
            );
        }
    }
    if let Some(latest) = &spec.latest_by {
        if !columns.iter().any(|c| &c.name == latest) {
            return bad(
                path,
                "latest_by",
                format!(
                    "`{latest}` is not one of the declared columns ({})",
                    names(&columns)
                ),
            );
        }
        if key.is_empty() {
            return bad(
                path,
                "latest_by",
                "orders the versions of one primary key, so it needs primary_key".into(),
            );
        }
    }
    Ok(Some(Source {
        name: name.to_string(),
        declared_in: path.to_path_buf(),
        description: sidecar.description,
        path: spec.path.unwrap_or_else(|| name.to_string()),
        format,
        dialect,
        columns,
        latest_by: spec.latest_by,
        fail_on_unknown_columns,
    }))
}

/// A declaration error naming the file and the key.
fn bad<T>(path: &Path, key: &str, message: String) -> Result<T> {
    Err(Error::Config(format!(
        "{}: [source] {key}: {message}",
        path.display()
    )))
}

fn names(columns: &[Column]) -> String {
    columns
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::sources::{ColType, Range};

    fn declare(body: &str) -> Result<Option<Source>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bronze_things.toml");
        std::fs::write(&path, body).unwrap();
        load_one(&path)
    }

    const OK: &str = r#"
description = "Things."
[source]
primary_key = "id"
[[source.columns]]
name = "id"
type = "int"
[[source.columns]]
name = "kind"
type = "str"
values = ["a", "b"]
[[source.columns]]
name = "amount"
type = "dec(10,3)"
min = 0
max = 5.5
"#;

    #[test]
    fn a_declaration_compiles_into_typed_columns_and_checks() {
        let s = declare(OK).unwrap().unwrap();
        assert_eq!(s.name, "things");
        assert_eq!(s.path, "things");
        assert_eq!(s.format, Format::Csv);
        assert_eq!(s.primary_key().len(), 1);
        assert!(s.columns[0].required, "a primary key column is required");
        assert_eq!(s.columns[2].ty, ColType::Dec(10, 3));
        assert_eq!(
            s.columns[2].checks.range,
            Some(Range::Dec(Some(0), Some(5500)))
        );
        assert_eq!(
            declare("description = \"tests only\"")
                .unwrap()
                .map(|s| s.name),
            None
        );
    }

    #[test]
    fn every_wrong_declaration_names_its_file_and_key() {
        let cases = [
            (
                OK.replace("primary_key = \"id\"", "primary_kee = \"id\""),
                "unknown field `primary_kee`",
            ),
            (
                OK.replace("type = \"int\"", "type = \"integer\""),
                "columns[0] (`id`) type: `integer` is not a type",
            ),
            (
                OK.replace("primary_key = \"id\"", "primary_key = \"nope\""),
                "primary_key: `nope` is not one of the declared columns",
            ),
            (
                OK.replace("values = [\"a\", \"b\"]", "pattern = \"[a-\""),
                "columns[1] (`kind`) pattern: `[a-` is not a regular expression",
            ),
            (
                OK.replace("[source]", "[source]\nlatest_by = \"when\""),
                "latest_by: `when` is not one of",
            ),
            (
                OK.replace("[source]", "[source]\nformat = \"xml\""),
                "format: `xml` is not one of csv, ndjson, parquet",
            ),
            (OK.replace("min = 0", "min = 9"), "min 9 is above max 5.5"),
            (
                OK.replace("values = [\"a\", \"b\"]", "min = 1"),
                "min and max apply to int, float and dec",
            ),
            (
                OK.replace("[source]", "[source]\ndelimiter = \";;\""),
                "delimiter: `;;` must be one ASCII character",
            ),
            (
                OK.replace("[source]", "[source]\nunknown_columns = \"drop\""),
                "unknown_columns: `drop` is not ignore or fail",
            ),
        ];
        for (body, needle) in cases {
            let err = crate::error::error_chain(&declare(&body).unwrap_err());
            assert!(
                err.contains("bronze_things.toml") && err.contains(needle),
                "{needle}: {err}"
            );
        }
    }

    #[test]
    fn two_sources_cannot_claim_one_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bronze")).unwrap();
        std::fs::write(
            dir.path().join("bronze/bronze_a.toml"),
            OK.replace("[source]", "[source]\npath = \"shared\""),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("bronze/bronze_b.toml"),
            OK.replace("[source]", "[source]\npath = \"Shared/\""),
        )
        .unwrap();
        let err = load_sources(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("bronze_b.toml") && err.contains("already the path of source `a`"),
            "{err}"
        );
    }
}

//! `table_format`: how silver and gold tables are stored. `parquet` (the
//! default) is a folder of Parquet files sealed by `_SUCCESS`; `delta` is a
//! Delta Lake table, one table version per publish (`storage/delta.rs`).
//!
//! Written either for both layers, `table_format = "delta"`, or per layer,
//! `table_format = { silver = "parquet", gold = "delta" }`. Bronze and the
//! quarantine are always Parquet: a bronze table is one part per input file,
//! which nightly runs keep or replace file by file (docs/operations.md).

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// The storage format of one layer's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    /// A folder of Parquet files and its `_SUCCESS` marker.
    #[default]
    Parquet,
    /// A Delta Lake table: `_delta_log/`, a version per publish, time travel.
    Delta,
}

impl TableFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            TableFormat::Parquet => "parquet",
            TableFormat::Delta => "delta",
        }
    }
}

/// The format of the silver and of the gold tables (config `table_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TableFormats {
    pub silver: TableFormat,
    pub gold: TableFormat,
}

/// Written back as it is usually written: one string when both layers agree.
impl Serialize for TableFormats {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        if self.silver == self.gold {
            return self.silver.serialize(serializer);
        }
        let mut per_layer = serializer.serialize_struct("TableFormats", 2)?;
        per_layer.serialize_field("silver", &self.silver)?;
        per_layer.serialize_field("gold", &self.gold)?;
        per_layer.end()
    }
}

impl TableFormats {
    /// Both layers in one format (flag `--table-format`).
    pub fn all(format: TableFormat) -> Self {
        TableFormats {
            silver: format,
            gold: format,
        }
    }

    /// The format of a layer's tables (`bronze`, `_quarantine`: Parquet).
    pub fn of(&self, layer: &str) -> TableFormat {
        match layer {
            "silver" => self.silver,
            "gold" => self.gold,
            _ => TableFormat::Parquet,
        }
    }

    pub fn uses_delta(&self) -> bool {
        self.silver == TableFormat::Delta || self.gold == TableFormat::Delta
    }
}

/// Per-layer form of `table_format`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PerLayer {
    #[serde(default)]
    silver: TableFormat,
    #[serde(default)]
    gold: TableFormat,
}

impl<'de> Deserialize<'de> for TableFormats {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> Visitor<'de> for Either {
            type Value = TableFormats;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#""parquet", "delta", or { silver = "…", gold = "…" }"#)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TableFormats, E> {
                match v {
                    "parquet" => Ok(TableFormats::all(TableFormat::Parquet)),
                    "delta" => Ok(TableFormats::all(TableFormat::Delta)),
                    other => Err(E::custom(format!(
                        "unknown table_format `{other}`; expected \"parquet\" or \"delta\" \
                         (bronze and the quarantine are always Parquet)"
                    ))),
                }
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<TableFormats, M::Error> {
                let per = PerLayer::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(TableFormats {
                    silver: per.silver,
                    gold: per.gold,
                })
            }
        }
        deserializer.deserialize_any(Either)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Holder {
        table_format: TableFormats,
    }

    fn parse(text: &str) -> Result<TableFormats, String> {
        toml::from_str::<Holder>(text)
            .map(|h| h.table_format)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn one_format_or_one_per_layer() {
        assert_eq!(
            parse(r#"table_format = "delta""#).unwrap(),
            TableFormats::all(TableFormat::Delta)
        );
        let mixed = parse(r#"table_format = { gold = "delta" }"#).unwrap();
        assert_eq!(mixed.of("silver"), TableFormat::Parquet);
        assert_eq!(mixed.of("gold"), TableFormat::Delta);
        assert_eq!(mixed.of("bronze"), TableFormat::Parquet);
        let err = parse(r#"table_format = "iceberg""#).unwrap_err();
        assert!(err.contains("unknown table_format `iceberg`"), "{err}");
        let err = parse(r#"table_format = { bronze = "delta" }"#).unwrap_err();
        assert!(err.contains("bronze"), "{err}");
    }
}

//! The Parquet encoding policy: which settings each layer's files get, in
//! the two forms the writers take (arrow-rs `WriterProperties` for local
//! writes, DataFusion `TableParquetOptions` for a cluster's sink).

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::config::{ParquetColumnOptions, TableParquetOptions};
use datafusion::common::parquet_config::DFParquetWriterVersion;
use datafusion::parquet::basic::{Compression, Encoding as ParquetEncoding, ZstdLevel};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use datafusion::parquet::schema::types::ColumnPath;

use crate::config::Config;
use crate::error::Result;
use crate::layer::Layer;

/// The Parquet settings of a layer's files: ZSTD, column statistics, bounded
/// row groups. Gold is for people and BI tools (format 1.0, dictionaries,
/// `zstd_level`, page index); bronze, silver and quarantine are for the next
/// model (format 2.0 delta encodings, ZSTD 1, no dictionaries but on the
/// lineage columns), which is cheaper to write (docs/performance.md).
pub fn writer_properties(config: &Config, layer: Layer) -> Result<WriterProperties> {
    let encoding = Encoding::of(config, layer);
    let mut builder = WriterProperties::builder()
        .set_statistics_enabled(encoding.statistics)
        .set_max_row_group_row_count(Some(config.row_group_rows))
        .set_created_by(created_by())
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(encoding.zstd_level)?))
        .set_dictionary_enabled(encoding.dictionary)
        .set_writer_version(if encoding.format_2 {
            WriterVersion::PARQUET_2_0
        } else {
            WriterVersion::PARQUET_1_0
        });
    if !encoding.dictionary {
        for lineage in LINEAGE_COLUMNS {
            builder = builder.set_column_dictionary_enabled(ColumnPath::from(lineage), true);
        }
    }
    Ok(builder.build())
}

/// `props` for a table of `schema`. In format 2.0 files, decimal columns
/// (fixed-length byte arrays in Parquet) keep PLAIN encoding: Polars cannot
/// decode them as DELTA_BYTE_ARRAY, their default without a dictionary.
pub fn properties_for(props: &WriterProperties, schema: &Schema) -> WriterProperties {
    let decimals = decimal_columns(schema);
    if props.writer_version() != WriterVersion::PARQUET_2_0 || decimals.is_empty() {
        return props.clone();
    }
    decimals
        .into_iter()
        .fold(props.clone().into_builder(), |builder, column| {
            builder.set_column_encoding(ColumnPath::from(column), ParquetEncoding::PLAIN)
        })
        .build()
}

/// The same rule as [`properties_for`] for a cluster's Parquet sink.
pub fn options_for(options: &mut TableParquetOptions, schema: &Schema) {
    if options.global.writer_version != DFParquetWriterVersion::V2_0 {
        return;
    }
    for column in decimal_columns(schema) {
        options
            .column_specific_options
            .entry(column)
            .or_default()
            .encoding = Some("plain".into());
    }
}

fn decimal_columns(schema: &Schema) -> Vec<String> {
    schema
        .fields()
        .iter()
        .filter(|f| {
            matches!(
                f.data_type(),
                DataType::Decimal128(..) | DataType::Decimal256(..)
            )
        })
        .map(|f| f.name().clone())
        .collect()
}

/// The same encoding as [`writer_properties`], in the form DataFusion's own
/// Parquet sink takes: used when a Ballista cluster writes a model's files.
pub fn table_parquet_options(config: &Config, layer: Layer) -> TableParquetOptions {
    let encoding = Encoding::of(config, layer);
    let mut options = TableParquetOptions::default();
    options.global.compression = Some(format!("zstd({})", encoding.zstd_level));
    options.global.dictionary_enabled = Some(encoding.dictionary);
    options.global.writer_version = if encoding.format_2 {
        DFParquetWriterVersion::V2_0
    } else {
        DFParquetWriterVersion::V1_0
    };
    options.global.statistics_enabled = Some(
        match encoding.statistics {
            EnabledStatistics::Page => "page",
            EnabledStatistics::Chunk => "chunk",
            EnabledStatistics::None => "none",
        }
        .into(),
    );
    options.global.max_row_group_size = config.row_group_rows;
    options.global.created_by = created_by();
    if !encoding.dictionary {
        for lineage in LINEAGE_COLUMNS {
            options.column_specific_options.insert(
                lineage.to_string(),
                ParquetColumnOptions {
                    dictionary_enabled: Some(true),
                    ..Default::default()
                },
            );
        }
    }
    options
}

/// Columns ingestion adds to every bronze row (`ingest::sources::lineage_fields`).
const LINEAGE_COLUMNS: [&str; 3] = ["_source_file", "_run_id", "_ingested_at"];

fn created_by() -> String {
    format!("medallion {}", env!("CARGO_PKG_VERSION"))
}

/// A layer's Parquet encoding (see [`writer_properties`]).
struct Encoding {
    zstd_level: i32,
    dictionary: bool,
    statistics: EnabledStatistics,
    /// Parquet format 2.0 data pages and encodings rather than 1.0.
    format_2: bool,
}

impl Encoding {
    fn of(config: &Config, layer: Layer) -> Encoding {
        if layer == Layer::Gold {
            Encoding {
                zstd_level: config.zstd_level,
                dictionary: true,
                statistics: EnabledStatistics::Page,
                format_2: false,
            }
        } else {
            Encoding {
                zstd_level: 1,
                dictionary: false,
                statistics: EnabledStatistics::Chunk,
                format_2: true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layer_keeps_column_statistics_and_its_parquet_format() {
        let config = Config::default();
        let column = ColumnPath::from("any");
        for (layer, statistics) in [
            (Layer::Bronze, EnabledStatistics::Chunk),
            (Layer::Silver, EnabledStatistics::Chunk),
            (Layer::Gold, EnabledStatistics::Page),
        ] {
            let props = writer_properties(&config, layer).unwrap();
            assert_eq!(props.statistics_enabled(&column), statistics, "{layer:?}");
            // Format 2.0 pages below gold; gold stays 1.0 for every BI reader.
            let (version, df_version) = if layer == Layer::Gold {
                (WriterVersion::PARQUET_1_0, DFParquetWriterVersion::V1_0)
            } else {
                (WriterVersion::PARQUET_2_0, DFParquetWriterVersion::V2_0)
            };
            assert_eq!(props.writer_version(), version, "{layer:?}");
            let options = table_parquet_options(&config, layer);
            assert_eq!(options.global.writer_version, df_version, "{layer:?}");
            assert_eq!(
                options.global.statistics_enabled.as_deref(),
                Some(if layer == Layer::Gold {
                    "page"
                } else {
                    "chunk"
                })
            );
        }
    }

    #[test]
    fn decimals_stay_plain_in_format_2_files_only() {
        use datafusion::arrow::datatypes::Field;
        let config = Config::default();
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("price", DataType::Decimal128(18, 2), true),
        ]);
        let (id, price) = (ColumnPath::from("id"), ColumnPath::from("price"));
        let silver = properties_for(&writer_properties(&config, Layer::Silver).unwrap(), &schema);
        assert_eq!(silver.encoding(&price), Some(ParquetEncoding::PLAIN));
        assert_eq!(
            silver.encoding(&id),
            None,
            "integers keep the delta fallback"
        );
        let gold = properties_for(&writer_properties(&config, Layer::Gold).unwrap(), &schema);
        assert_eq!(gold.encoding(&price), None, "format 1.0 needs no exception");

        let mut options = table_parquet_options(&config, Layer::Silver);
        options_for(&mut options, &schema);
        let price = options.column_specific_options.get("price");
        assert_eq!(price.and_then(|o| o.encoding.as_deref()), Some("plain"));
        assert!(!options.column_specific_options.contains_key("id"));
        let mut options = table_parquet_options(&config, Layer::Gold);
        options_for(&mut options, &schema);
        assert!(!options.column_specific_options.contains_key("price"));
    }
}

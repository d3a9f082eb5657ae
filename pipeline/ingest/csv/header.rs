//! A file's columns against the declaration: the position of each declared
//! column in a CSV header or a Parquet schema, and the errors for a missing
//! required column or (with `unknown_columns = "fail"`) an undeclared one.

use csv::ByteRecord;

use super::IngestState;
use crate::error::Result;
use crate::ingest::files::InputFile;

impl IngestState<'_> {
    /// Header position of each spec column (case-insensitive, trimmed, BOM tolerated).
    pub(super) fn map_header(
        &self,
        file: &InputFile,
        header: &ByteRecord,
    ) -> Result<Vec<Option<usize>>> {
        let mut names = Vec::with_capacity(header.len());
        for (i, raw) in header.iter().enumerate() {
            let raw = if i == 0 {
                raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw)
            } else {
                raw
            };
            let name = std::str::from_utf8(raw).map_err(|_| {
                self.source_error(format!(
                    "{}: the header is not valid UTF-8 text; is this really a CSV file? \
                     Save it as UTF-8 with a header line ({})",
                    file.name,
                    self.column_list()
                ))
            })?;
            if name.contains('\0') {
                return Err(self.source_error(format!(
                    "{}: the header holds binary data; is this really a CSV file?",
                    file.name
                )));
            }
            names.push(name.trim().to_ascii_lowercase());
        }
        self.map_names(file, &names)
    }

    /// Position of each declared column among a file's (lower-case) column
    /// names; a missing required column or, with unknown_columns = "fail",
    /// an undeclared one fails the source. Shared by CSV headers and Parquet schemas.
    pub(super) fn map_names(
        &self,
        file: &InputFile,
        names: &[String],
    ) -> Result<Vec<Option<usize>>> {
        if self.source.fail_on_unknown_columns
            && let Some(extra) = names
                .iter()
                .find(|n| !n.is_empty() && !self.source.columns.iter().any(|c| &c.name == *n))
        {
            return Err(self.undeclared(&file.name, extra));
        }
        let mut mapping = Vec::with_capacity(self.source.columns.len());
        for column in &self.source.columns {
            let position = names.iter().position(|n| *n == column.name);
            if position.is_none() && column.required {
                return Err(self.source_error(format!(
                    "{}: required column `{}` is missing from the header (found: {}); add it to the file",
                    file.name,
                    column.name,
                    if names.is_empty() { "nothing".to_string() } else { names.join(", ") }
                )));
            }
            mapping.push(position);
        }
        Ok(mapping)
    }
}

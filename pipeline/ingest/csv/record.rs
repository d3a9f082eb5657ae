//! Helpers on one CSV record: a field's text, a blank line, the record as
//! the raw line the quarantine keeps.

use csv::ByteRecord;

/// The text at byte `range` of `record`, `None` if it is not UTF-8. `text`
/// is the whole record when it is valid UTF-8: fields split at ASCII bytes,
/// so its field ranges fall on character boundaries and slicing it needs no
/// check. Only a record that failed that check is checked field by field.
#[inline]
pub fn field_text<'r>(
    record: &'r ByteRecord,
    text: Option<&'r str>,
    range: std::ops::Range<usize>,
) -> Option<&'r str> {
    match text {
        Some(text) => text.get(range),
        None => std::str::from_utf8(record.as_slice().get(range)?).ok(),
    }
}

/// A line holding nothing but whitespace (such as a trailing `\r\n`).
pub fn is_blank(record: &ByteRecord) -> bool {
    record.len() == 1 && record[0].iter().all(u8::is_ascii_whitespace)
}

/// The record as one CSV line, quoting as needed; invalid UTF-8 is shown lossily.
pub fn raw_values(record: &ByteRecord) -> String {
    // Drop the `\r` a CRLF line leaves on the last field.
    let fields: ByteRecord = record
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if i + 1 == record.len() {
                f.strip_suffix(b"\r").unwrap_or(f)
            } else {
                f
            }
        })
        .collect();
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    if writer.write_byte_record(&fields).is_err() {
        return String::new();
    }
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes)
        .trim_end_matches(['\r', '\n'])
        .to_string()
}

//! `{{ latest_rows('bronze_<source>') }}` is the de-duplication of a bronze
//! table as its declaration says: one row per primary key, the latest by
//! the source's `latest_by` column (NULLs oldest), then by source file name
//! and line. It is a subquery, used as `from {{ latest_rows('bronze_x') }} as x`.
//!
//! Only the keys that occur more than once go through the window: their
//! 64-bit keys come from `repeated_keys()` (bucketed sorting, no hash table
//! of every key), the window names the superseded copies by
//! (`_source_file`, `_source_line`), and an anti join whose build side is
//! that small set drops them. Each subquery is referenced once, since
//! DataFusion plans a repeated CTE once per reference, and the small side
//! comes first in each join so that it is the hash table
//! (docs/performance.md).

use crate::ingest::amplitude::FunnelTable;
use crate::ingest::sources::{ColType, Source};

/// How the rows of one bronze table are de-duplicated.
#[derive(Debug, Clone, PartialEq)]
pub struct Dedup {
    pub table: String,
    /// The primary key's columns, with whether each is an integer.
    pub key: Vec<(String, bool)>,
    pub latest_by: Option<String>,
}

/// The declared de-duplication of a source, if it has a primary key.
pub fn dedup_of_source(source: &Source) -> Option<Dedup> {
    let key = source.primary_key();
    if key.is_empty() {
        return None;
    }
    Some(Dedup {
        table: source.bronze_table(),
        key: key
            .iter()
            .map(|c| (c.name.clone(), c.ty == ColType::Int))
            .collect(),
        latest_by: source.latest_by.clone(),
    })
}

/// The de-duplication of an Amplitude funnel table: its key, latest fetch first.
pub fn dedup_of_funnel(funnel: FunnelTable) -> Dedup {
    Dedup {
        table: funnel.table_name().to_string(),
        key: funnel
            .key()
            .iter()
            .map(|c| (c.to_string(), false))
            .collect(),
        latest_by: Some("fetched_at".to_string()),
    }
}

/// The de-duplicating subquery of [`Dedup`].
pub fn latest_rows(dedup: &Dedup) -> String {
    let t = &dedup.table;
    // One 64-bit key per row for repeated_keys(): the integer itself, the
    // hash of a text key, or the hash of several columns.
    let key64 = |alias: &str| match dedup.key.as_slice() {
        [(column, true)] => format!("{alias}{column}"),
        [(column, false)] => format!("key_hash({alias}{column})"),
        columns => format!(
            "row_hash({})",
            columns
                .iter()
                .map(|(c, _)| format!("{alias}{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let partition = dedup
        .key
        .iter()
        .map(|(c, _)| format!("b.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let latest = dedup
        .latest_by
        .as_ref()
        .map(|c| format!("b.{c} desc nulls last, "))
        .unwrap_or_default();
    format!(
        "(
        select b.*
        from (
            select _source_file, _source_line
            from (
                select
                    b._source_file,
                    b._source_line,
                    row_number() over (
                        partition by {partition}
                        order by {latest}b._source_file desc, b._source_line desc
                    ) as version_rank
                from (select unnest(repeated_keys({key})) as repeated_key from {t}) as d
                inner join {t} as b on d.repeated_key = {key_b}
            ) as versions
            where version_rank > 1
        ) as superseded
        right anti join {t} as b
            on superseded._source_line = b._source_line
            and superseded._source_file = b._source_file
    )",
        key = key64(""),
        key_b = key64("b."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bronze_table_with_a_key_has_its_declared_dedup() {
        let sources = crate::ingest::load_sources(std::path::Path::new("sql")).unwrap();
        let dedup = |name: &str| {
            sources
                .iter()
                .find(|s| s.name == name)
                .and_then(dedup_of_source)
        };
        let orders = dedup("orders").unwrap();
        assert_eq!(orders.key, vec![("order_id".to_string(), true)]);
        assert_eq!(orders.latest_by, None);
        let customers = dedup("customers").unwrap();
        assert_eq!(customers.latest_by.as_deref(), Some("updated_at"));
        let events = dedup("events").unwrap();
        assert_eq!(events.key, vec![("event_id".to_string(), false)]);
        assert_eq!(dedup_of_funnel(FunnelTable::Daily).key.len(), 7);
        assert_eq!(dedup("bt_users_transactions"), None, "no primary key");
    }
}

//! Which dates an incremental build recomputes: each input as this build
//! reads it, against what the published version was built from.

use std::collections::{BTreeMap, BTreeSet};

use super::{Follow, Plan};
use crate::error::{Error, Result};
use crate::models::Model;
use crate::models::period::Period;
use crate::models::sidecar::Incremental;
use crate::parquet::partitioned::{PartitionDate, parse_date};
use crate::run::context::Run;
use crate::storage::Layout;
use crate::storage::marker::{InputState, Partitioned, parquet_files};

/// Each input as this build reads it (recorded in the marker).
pub(super) fn current_inputs(
    run: &Run,
    model: &Model,
    layout: &Layout,
) -> Result<BTreeMap<String, InputState>> {
    let mut inputs = BTreeMap::new();
    for dep in &model.deps {
        let info = run.tables.get(dep).cloned().unwrap_or_default();
        let layer = info.layer.map_or("bronze", |l| l.as_str());
        let parquet = run.config.table_format.of(layer) == crate::config::TableFormat::Parquet;
        let state = if info.partitioned && parquet {
            let dir = layout.table_dir(layer, dep);
            let mut partitions: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for file in parquet_files(&dir)? {
                let (folder, name) = file.split_once('/').unwrap_or(("", file.as_str()));
                partitions
                    .entry(folder.to_string())
                    .or_default()
                    .push(name.to_string());
            }
            InputState::Partitions(partitions)
        } else if info.parts {
            let marker = crate::storage::Marker::parse(
                &std::fs::read(
                    layout
                        .table_dir(layer, dep)
                        .join(crate::storage::SUCCESS_MARKER),
                )
                .map_err(|e| Error::io("cannot read marker", layout.table_dir(layer, dep), e))?,
                dep,
            )?;
            let mut keys: Vec<String> = marker
                .inputs
                .iter()
                .map(|p| format!("{}\t{}", p.key, p.file))
                .collect();
            keys.sort();
            InputState::Parts(keys)
        } else {
            InputState::Version(run.version(dep))
        };
        inputs.insert(dep.clone(), state);
    }
    Ok(inputs)
}

/// Compare the inputs with those the published version was built from;
/// `period` says how many days a partition of each partitioned input holds.
pub(super) fn plan(
    spec: &Incremental,
    previous: Option<&Partitioned>,
    base: &str,
    inputs: &BTreeMap<String, InputState>,
    period: &dyn Fn(&str) -> Period,
    layout: &Layout,
) -> Plan {
    let Some(prev) = previous else {
        return Plan::Full("no incremental version published");
    };
    if prev.base != base {
        return Plan::Full("the model, its tests or the variables changed");
    }
    if prev.inputs.keys().ne(inputs.keys()) {
        return Plan::Full("the model reads other tables");
    }
    let mut dates: BTreeSet<PartitionDate> = BTreeSet::new();
    // The changed dates of the inputs the rows follow (`follows`), exactly.
    let mut followed: BTreeMap<String, BTreeSet<PartitionDate>> = BTreeMap::new();
    let mut new_parts: Vec<(String, Vec<String>)> = Vec::new();
    for (dep, now) in inputs {
        match (&prev.inputs[dep], now) {
            (InputState::Version(a), InputState::Version(b)) if a == b && a.is_some() => {}
            (InputState::Parts(a), InputState::Parts(b)) => {
                let had: BTreeSet<&String> = a.iter().collect();
                let has: BTreeSet<&String> = b.iter().collect();
                if !had.is_subset(&has) {
                    return Plan::Full("a bronze file changed or was removed");
                }
                let added: Vec<String> = has.difference(&had).map(|s| s.to_string()).collect();
                if !added.is_empty() {
                    new_parts.push((dep.clone(), added));
                }
            }
            (InputState::Partitions(a), InputState::Partitions(b)) => {
                let folders: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                for folder in folders {
                    if a.get(folder) == b.get(folder) {
                        continue;
                    }
                    let value = folder.split_once('=').map_or("", |(_, v)| v);
                    match parse_date(value) {
                        Some(Some(d)) if spec.follows.contains_key(dep) => {
                            followed.entry(dep.clone()).or_default().insert(Some(d));
                        }
                        // Every day of a changed partition of a monthly
                        // input changed, not its first only.
                        Some(Some(d)) => {
                            for day in period(dep).days(d) {
                                dates.extend(spec.partitions_reading(day).into_iter().map(Some));
                            }
                        }
                        _ => return Plan::Full("an input's undated rows changed"),
                    }
                }
            }
            _ => return Plan::Full("an input changed"),
        }
    }
    let follow: Vec<Follow> = followed
        .into_iter()
        .map(|(table, dates)| Follow {
            column: spec.follows[&table].clone(),
            table,
            dates,
        })
        .collect();
    // The one bronze table whose keys the rows are a function of.
    let bronze: Vec<&String> = inputs
        .iter()
        .filter(|(_, s)| matches!(s, InputState::Parts(_)))
        .map(|(t, _)| t)
        .collect();
    match new_parts.as_slice() {
        [] if follow.is_empty() => Plan::Dates(dates),
        [] => match bronze.as_slice() {
            [table] if dates.is_empty() => Plan::Keys {
                table: table.to_string(),
                parts: Vec::new(),
                follow,
            },
            _ => Plan::Full("a followed input changed, with other inputs"),
        },
        // The other inputs are unchanged (or followed), so a join with
        // them stays key-local.
        [(table, added)] if dates.is_empty() => {
            let dir = layout.table_dir("bronze", table);
            let parts = added
                .iter()
                .filter_map(|k| k.split_once('\t'))
                .map(|(key, file)| {
                    (
                        dir.join(crate::storage::marker::part_name(key)),
                        file.to_string(),
                    )
                })
                .collect();
            Plan::Keys {
                table: table.clone(),
                parts,
                follow,
            }
        }
        _ => Plan::Full("new bronze files, with other inputs"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Days since the epoch of `YYYY-MM-DD`.
    fn day(text: &str) -> i32 {
        match parse_date(text) {
            Some(Some(d)) => d,
            _ => panic!("not a date: {text}"),
        }
    }

    #[test]
    fn a_changed_partition_of_a_monthly_input_changes_each_of_its_days() {
        let spec: Incremental = toml::from_str("by = 'day'").unwrap();
        let input = |file: &str| {
            let files = [("month=2026-10-01".to_string(), vec![file.to_string()])];
            [("m".to_string(), InputState::Partitions(files.into()))].into()
        };
        let previous = Partitioned {
            base: "b".into(),
            as_of: "2026-10-30".into(),
            inputs: input("a.parquet"),
            future: None,
            rows: Default::default(),
        };
        let layout = Layout::new("unused");
        let dates = |period: Period| match plan(
            &spec,
            Some(&previous),
            "b",
            &input("b.parquet"),
            &|_| period,
            &layout,
        ) {
            Plan::Dates(dates) => dates,
            _ => panic!("expected the changed dates"),
        };
        // A daily table reading the monthly input recomputes all of October.
        let october: BTreeSet<PartitionDate> =
            (day("2026-10-01")..=day("2026-10-31")).map(Some).collect();
        assert_eq!(dates(Period::Month), october);
        // The same folder of a daily input is that one day.
        assert_eq!(dates(Period::Day), [Some(day("2026-10-01"))].into());
    }
}

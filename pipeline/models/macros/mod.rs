//! SQL macros: text a model writes as `{{ name('arg', …) }}`, expanded
//! before the model is parsed, so logic shared by many models is written
//! once and config that shapes a query (the arms of an experiment) is
//! printed into it as literals.
//!
//! | macro | expands to |
//! |---|---|
//! | `latest_rows('bronze_<source>')` | the de-duplicated rows of a bronze table (`latest_rows`) |
//! | `ab_group(<bucket>)` | the onboarding arm owning a bucket (`ab`) |
//! | `ab_arms()` | the onboarding arms as rows (variant, arm_order, share) |
//! | `experiment_shares()` | the configured Amplitude shares (experiment_id, variant, share) |
//! | `ab_comparison('<relation>', '<partition>')` | the A/B/N statistics of docs/models.md §3.8–3.9 |

mod ab;
mod latest_rows;

pub use latest_rows::{Dedup, dedup_of_funnel, dedup_of_source, latest_rows};

use crate::config::Config;
use crate::config::arms::Arm;
use crate::error::{Error, Result};
use crate::ingest::Source;
use crate::ingest::amplitude::FunnelTable;

const KNOWN: &str = "latest_rows('bronze_<source>'), ab_group(<bucket>), ab_arms(), \
                     experiment_shares(), ab_comparison('<relation>', '<partition columns>')";

/// What the macros print into SQL: the project's declared de-duplications
/// and the config's experiments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    /// The de-duplication of every bronze table with a primary key.
    pub dedups: Vec<Dedup>,
    /// The onboarding arms (`variables.ab_arms`).
    pub arms: Vec<Arm>,
    /// (experiment_id, variant, share) of `[[amplitude.experiments]] shares`.
    pub shares: Vec<(String, String, f64)>,
}

impl Context {
    /// The context of a (validated) config and the project's sources.
    pub fn new(config: &Config, sources: &[std::sync::Arc<Source>]) -> Result<Self> {
        let mut dedups: Vec<Dedup> = sources.iter().filter_map(|s| dedup_of_source(s)).collect();
        dedups.extend(FunnelTable::ALL.into_iter().map(dedup_of_funnel));
        let shares = config
            .amplitude
            .experiments
            .iter()
            .filter_map(|e| Some((e, e.shares.as_ref()?)))
            .flat_map(|(e, shares)| {
                e.variants
                    .iter()
                    .zip(shares)
                    .map(|(v, s)| (e.id.clone(), v.clone(), *s))
            })
            .collect();
        Ok(Context {
            dedups,
            arms: config.variables.arms()?,
            shares,
        })
    }
}

/// Expand every macro of a model's SQL; an unknown macro, a wrong argument
/// or a table without a primary key is an error naming it.
pub fn expand(sql: &str, context: &Context) -> Result<String> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| Error::Input("a `{{` without its closing `}}`".into()))?;
        out.push_str(&expand_one(after[..end].trim(), context)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn expand_one(call: &str, context: &Context) -> Result<String> {
    let unknown = || {
        Error::Input(format!(
            "unknown macro `{{{{ {call} }}}}`; the macros are {KNOWN}"
        ))
    };
    let (name, args) = call
        .split_once('(')
        .and_then(|(name, rest)| Some((name.trim(), rest.trim_end().strip_suffix(')')?)))
        .ok_or_else(unknown)?;
    let args = arguments(args);
    let arity = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(Error::Input(format!(
                "macro `{{{{ {call} }}}}` takes {n} argument(s), got {}",
                args.len()
            )))
        }
    };
    match name {
        "latest_rows" => {
            arity(1)?;
            let dedup = context
                .dedups
                .iter()
                .find(|d| d.table == args[0])
                .ok_or_else(|| {
                    Error::Input(format!(
                        "latest_rows('{}'): not a bronze table with a primary key",
                        args[0]
                    ))
                })?;
            Ok(latest_rows(dedup))
        }
        "ab_group" => arity(1).map(|()| ab::ab_group(&context.arms, &args[0])),
        "ab_arms" => arity(0).map(|()| ab::ab_arms(&context.arms)),
        "experiment_shares" => arity(0).map(|()| ab::experiment_shares(&context.shares)),
        "ab_comparison" => arity(2).map(|()| ab::ab_comparison(&args[0], &args[1])),
        _ => Err(unknown()),
    }
}

/// Comma-separated arguments; a `'quoted'` one may hold commas.
fn arguments(text: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '\'' => quoted = !quoted,
            ',' if !quoted => args.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    args.push(current);
    let args: Vec<String> = args.into_iter().map(|a| a.trim().to_string()).collect();
    if args.len() == 1 && args[0].is_empty() {
        Vec::new()
    } else {
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context_of(config: &Config) -> Context {
        let sources: Vec<_> = crate::ingest::load_sources(std::path::Path::new("sql"))
            .unwrap()
            .into_iter()
            .map(std::sync::Arc::new)
            .collect();
        Context::new(config, &sources).unwrap()
    }

    fn expand(sql: &str) -> Result<String> {
        super::expand(sql, &context_of(&Config::default()))
    }

    #[test]
    fn macros_expand_in_place_and_name_what_is_wrong() {
        let sql = expand("select * from {{ latest_rows('bronze_events') }} as e").unwrap();
        assert!(sql.starts_with("select * from (\n"), "{sql}");
        assert!(sql.ends_with(") as e"), "{sql}");
        assert!(sql.contains("repeated_keys(key_hash(event_id))"), "{sql}");
        assert!(
            sql.contains("on d.repeated_key = key_hash(b.event_id)"),
            "{sql}"
        );
        let customers = expand("{{latest_rows('bronze_customers')}}").unwrap();
        assert!(customers.contains("order by b.updated_at desc nulls last, b._source_file desc"));
        assert!(customers.contains("repeated_keys(customer_id)"));
        let daily = expand("{{ latest_rows('bronze_amplitude_funnel_daily') }}").unwrap();
        assert!(
            daily.contains("repeated_keys(row_hash(experiment_id, variant,"),
            "{daily}"
        );
        let err = expand("{{ latest_rows('bronze_bt_users_transactions') }}").unwrap_err();
        assert!(
            err.to_string()
                .contains("not a bronze table with a primary key"),
            "{err}"
        );
        let unknown = expand("{{ nope('x') }}").unwrap_err().to_string();
        assert!(
            unknown.contains("unknown macro") && unknown.contains("ab_comparison"),
            "{unknown}"
        );
        assert!(
            expand("{{ ab_arms('x') }}")
                .unwrap_err()
                .to_string()
                .contains("takes 0 argument")
        );
        assert!(expand("select {{ latest_rows('bronze_orders')").is_err());
        assert_eq!(expand("select 1").unwrap(), "select 1");
    }

    #[test]
    fn experiment_macros_print_the_config() {
        assert_eq!(
            expand("{{ ab_group(o.ab_bucket) }}").unwrap(),
            "(case when o.ab_bucket < 500 then 'control' else 'treatment' end)"
        );
        assert_eq!(
            expand("{{ ab_arms() }}").unwrap(),
            "(select * from (values ('control', 0, cast(0.05 as double)), \
             ('treatment', 1, cast(0.95 as double))) as arms (variant, arm_order, share))"
        );
        assert!(
            expand("{{ experiment_shares() }}")
                .unwrap()
                .contains("where false")
        );
        let mut config = Config::default();
        config.amplitude.experiments = vec![crate::config::amplitude::ExperimentConfig {
            id: "it's".into(),
            start: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            end: chrono::NaiveDate::from_ymd_opt(2026, 1, 2).unwrap(),
            events: vec!["a".into()],
            variants: vec!["control".into(), "b".into()],
            shares: Some(vec![0.2, 0.8]),
            device: "All".into(),
            culture: "All".into(),
        }];
        let shares = super::expand("{{ experiment_shares() }}", &context_of(&config)).unwrap();
        assert!(
            shares.contains(
                "('it''s', 'control', cast(0.2 as double)), ('it''s', 'b', cast(0.8 as double))"
            ),
            "{shares}"
        );
        let comparison = expand("{{ ab_comparison('paired', 'metric, segment_name') }}").unwrap();
        assert!(comparison.contains("from paired"), "{comparison}");
        assert!(
            comparison.contains("partition by metric, segment_name\n"),
            "{comparison}"
        );
    }
}

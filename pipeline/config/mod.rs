//! `medallion.toml`: every setting, its default, and validation before any I/O.
//!
//! Precedence, lowest first: built-in defaults, the config file, `MEDALLION_*`
//! environment variables and flags (clap reads both, see `cli.rs`). Unknown
//! keys are rejected so a typo never silently falls back to a default. The
//! defaults are [`Config::default`]; docs/configuration.md lists them for
//! people, and a test holds the two together.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub mod amplitude;
pub mod arms;
mod cluster;
mod format;
mod paths;

pub use cluster::scheduler_address;
pub use format::{TableFormat, TableFormats};

use crate::error::{Error, Result};

/// The name of the config file looked up in the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "medallion.toml";

/// The whole configuration of a run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Input folder holding one entry per source (docs/models.md), or an `s3://`
    /// prefix downloaded before ingestion.
    pub input: PathBuf,
    /// Output root: a local folder or an `s3://bucket/prefix`.
    pub output: PathBuf,
    /// Directory holding `bronze/`, `silver/`, `gold/` SQL models.
    pub models: PathBuf,
    /// Share of a source's rows that may be quarantined before the source fails.
    pub max_bad_row_fraction: f64,
    /// Share by which a source's row count may fall against its published
    /// version before the run refuses it (a truncated or header-only file).
    pub max_shrink_fraction: f64,
    /// Publish a source however much it shrank (flag `--allow-shrink`).
    pub allow_shrink: bool,
    /// Rows per record batch when reading CSV.
    pub batch_rows: usize,
    /// A CSV file of at least two chunks of this many MiB is cut at record
    /// boundaries and parsed on the cores the run leaves idle; 0 reads
    /// every file on one core.
    pub csv_chunk_mb: usize,
    /// DataFusion partitions per query; 0 means CPU cores divided by
    /// `max_concurrent_models` (at least 1).
    pub target_partitions: usize,
    /// Models run at the same time when the DAG allows it.
    pub max_concurrent_models: usize,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// ZSTD level of gold Parquet files (1..=22). Bronze, silver
    /// and quarantine files, read mostly by the next model, use level 1.
    pub zstd_level: i32,
    /// Memory DataFusion's operators may hold, in MiB, shared by the models
    /// running at once; sorts, joins and aggregations spill to disk beyond
    /// it (hash joins and partial aggregations cannot spill and fail
    /// instead). 0 = no limit.
    pub memory_limit_mb: usize,
    /// How operators share `memory_limit_mb`: `greedy`, first come first
    /// served up to the limit (the default, as in datafusion-cli), or
    /// `fair`, each spilling operator held to an equal share of what
    /// non-spilling ones leave, whether or not the others use theirs.
    pub memory_pool: MemoryPoolKind,
    /// Folder for spill files.
    pub spill_dir: Option<PathBuf>,
    /// Where silver and gold models run: `local`, in this process (the
    /// default), or `ballista`, on an Apache DataFusion Ballista cluster
    /// (needs a build with the `distributed` feature, `scheduler`, and an
    /// `s3://` output, since executors cannot see this machine's disk).
    /// Bronze ingestion always runs here.
    pub engine: Engine,
    /// The Ballista scheduler, `df://host:port` (port 50050 when left out),
    /// used when `engine = "ballista"`.
    pub scheduler: Option<String>,
    /// Longest one query may run on the cluster (a model's SQL, or one of
    /// its data tests), in seconds, before the model fails and its previous
    /// version stays published. A guard for the nightly run: a Ballista job
    /// that lost an executor can wait forever instead of failing. 0 = no
    /// limit.
    pub cluster_query_timeout_seconds: u64,
    /// The run lock is a lease its run renews every fifth of this many
    /// seconds; a lock not renewed for this long is taken over by the next
    /// run from any host (a container or pod that died). 0 = never by
    /// time, only when its process is seen gone on the same host.
    pub lock_timeout_seconds: u64,
    /// Run folders kept under `_runs/` (the newest ones); older ones are
    /// removed after each run. 0 = keep all.
    pub keep_runs: usize,
    /// Storage of silver and gold tables: `parquet` or `delta` (Delta Lake),
    /// for both layers or per layer, `{ silver = "…", gold = "…" }`.
    pub table_format: TableFormats,
    /// Business variables used by the SQL models (docs/models.md).
    pub variables: Variables,
    /// `medallion fetch amplitude` settings and experiments.
    pub amplitude: amplitude::AmplitudeConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            input: PathBuf::from("datasets"),
            output: PathBuf::from("artifacts"),
            models: PathBuf::from("sql"),
            max_bad_row_fraction: 0.05,
            max_shrink_fraction: 0.5,
            allow_shrink: false,
            batch_rows: 65_536,
            csv_chunk_mb: 8,
            target_partitions: 0,
            max_concurrent_models: 2,
            row_group_rows: 1_048_576,
            zstd_level: 3,
            memory_limit_mb: 6144,
            memory_pool: MemoryPoolKind::default(),
            spill_dir: None,
            engine: Engine::Local,
            scheduler: None,
            cluster_query_timeout_seconds: 3600,
            lock_timeout_seconds: 600,
            keep_runs: 100,
            table_format: TableFormats::default(),
            variables: Variables::default(),
            amplitude: Default::default(),
        }
    }
}

/// Where silver and gold SQL models run (config `engine`, flag `--engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// In this process, with DataFusion.
    #[default]
    Local,
    /// On a Ballista cluster (`scheduler`).
    Ballista,
}

/// How DataFusion's operators share the memory limit (config `memory_pool`,
/// flag `--memory-pool`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum MemoryPoolKind {
    /// First come, first served up to the limit: an operator spills only
    /// when the limit is really reached.
    #[default]
    Greedy,
    /// Each spilling operator gets an equal share, so one cannot take
    /// memory another will need; it spills at its share even when the rest
    /// is unused.
    Fair,
}

/// Thresholds, weights and shares of docs/models.md §3, read in SQL with `param('<name>')`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Variables {
    /// Customers whose first revenue order is younger than this are `New`.
    pub new_customer_days: f64,
    /// Expected customer lifespan used by customer_lifetime_value.
    pub clv_lifespan_years: f64,
    /// Top share of products by revenue rank labelled `Best Seller`.
    pub best_seller_rank: f64,
    /// Rank below which a product is `Good`.
    pub good_rank: f64,
    /// Rank below which a product is `Moderate`.
    pub moderate_rank: f64,
    /// Stock at or below which a product is `Critical`.
    pub critical_stock: f64,
    /// Stock at or below which a product is `Low`.
    pub low_stock: f64,
    /// Stock above which a product is `Overstock`.
    pub overstock: f64,
    /// Significance level for A/B tests.
    pub alpha: f64,
    /// p-value below which a sample ratio mismatch is flagged.
    pub srm_alpha: f64,
    /// Salt of the onboarding A/B assignment `murmur3("<salt>/<user_id>")`.
    pub ab_salt: String,
    /// Share of onboarded users assigned to control.
    pub control_share: f64,
    /// Arms of the onboarding experiment as `name=share, …` in bucket order;
    /// empty means control (`control_share`) and treatment (`arms`).
    pub ab_arms: String,
    /// The variant every other one is compared with (docs/models.md §3.9).
    pub control_variant: String,
    /// N*, the sample size the confidence sequences are tightest at (§3.9).
    pub sequential_tuning: f64,
    /// Days from the first login that count towards the habit.
    pub habit_window_days: f64,
    /// Distinct transaction days (Individuals) or charges (Sellers) that make a habit.
    pub habit_threshold: f64,
    /// Product ranking: weight of a view event.
    pub view_weight: f64,
    /// Product ranking: weight of a click event.
    pub click_weight: f64,
    /// Product ranking: weight of an add_to_cart event.
    pub add_to_cart_weight: f64,
    /// Product ranking: weight of a purchase event.
    pub purchase_weight: f64,
    /// Product ranking: half-life of an event's weight, in hours.
    pub popularity_half_life_hours: f64,
    /// Product ranking: days of events before t0 that count.
    pub ranking_window_days: f64,
    /// Product ranking: half-life of freshness, in days since created_at.
    pub freshness_half_life_days: f64,
    /// Product ranking: share of popularity in exposure_score.
    pub popularity_weight: f64,
    /// Product ranking: share of strategy in exposure_score.
    pub strategy_weight: f64,
}

impl Default for Variables {
    fn default() -> Self {
        Variables {
            new_customer_days: 30.0,
            clv_lifespan_years: 3.0,
            best_seller_rank: 0.1,
            good_rank: 0.3,
            moderate_rank: 0.7,
            critical_stock: 10.0,
            low_stock: 50.0,
            overstock: 1000.0,
            alpha: 0.05,
            srm_alpha: 0.001,
            ab_salt: "onboarding-v1".into(),
            control_share: 0.05,
            ab_arms: String::new(),
            control_variant: "control".into(),
            sequential_tuning: 5000.0,
            habit_window_days: 30.0,
            habit_threshold: 5.0,
            view_weight: 1.0,
            click_weight: 2.0,
            add_to_cart_weight: 5.0,
            purchase_weight: 10.0,
            popularity_half_life_hours: 72.0,
            ranking_window_days: 30.0,
            freshness_half_life_days: 30.0,
            popularity_weight: 0.7,
            strategy_weight: 0.3,
        }
    }
}

impl Variables {
    /// The text variables by name, as the `setting()` SQL function sees them.
    pub fn text_map(&self) -> BTreeMap<String, String> {
        let value = serde_json::to_value(self).unwrap_or_default();
        value
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The numeric variables by name, as the `param()` SQL function sees them.
    pub fn as_map(&self) -> BTreeMap<String, f64> {
        let value = serde_json::to_value(self).unwrap_or_default();
        value
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_f64().map(|f| (k.clone(), f)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Set one variable from a `name=value` override (flag `--var`).
    pub fn set(&mut self, assignment: &str) -> Result<()> {
        let (name, value) = assignment.split_once('=').ok_or_else(|| {
            Error::Config(format!("--var expects name=value, got `{assignment}`"))
        })?;
        let mut map = serde_json::to_value(&*self)?;
        let obj = map
            .as_object_mut()
            .ok_or_else(|| Error::Config("variables are not a table".into()))?;
        let name = name.trim();
        if !obj.contains_key(name) {
            let known: Vec<&String> = obj.keys().collect();
            return Err(Error::Config(format!(
                "unknown variable `{name}`; known variables: {known:?}"
            )));
        }
        // Text variables take the value as written; the others must be numbers.
        let new_value = if obj[name].is_string() {
            serde_json::json!(value.trim())
        } else {
            let number: f64 = value
                .trim()
                .parse()
                .ok()
                .filter(|n: &f64| n.is_finite())
                .ok_or_else(|| {
                    Error::Config(format!("--var {name}: `{value}` is not a finite number"))
                })?;
            serde_json::json!(number)
        };
        obj.insert(name.to_string(), new_value);
        *self = serde_json::from_value(map)?;
        Ok(())
    }
}

impl Config {
    /// Load the config: an explicit file must exist; otherwise `medallion.toml`
    /// in the working directory is used when present, else the defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Config> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let p = PathBuf::from(DEFAULT_CONFIG_FILE);
                if !p.exists() {
                    return Ok(Config::default());
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|source| Error::ConfigFile {
            path: path.clone(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            Error::ConfigParse { source, .. } => Error::ConfigParse { path, source },
            other => other,
        })
    }

    /// Parse a config from TOML text (no validation).
    pub fn from_toml(text: &str) -> Result<Config> {
        toml::from_str(text).map_err(|source| Error::ConfigParse {
            path: PathBuf::from("<inline>"),
            source,
        })
    }

    /// Check every value before any I/O happens.
    pub fn validate(&self) -> Result<()> {
        let v = &self.variables;
        let checks: [(bool, &str); 19] = [
            (
                (0.0..=1.0).contains(&self.max_bad_row_fraction),
                "max_bad_row_fraction must be within 0..=1",
            ),
            (
                (0.0..=1.0).contains(&self.max_shrink_fraction),
                "max_shrink_fraction must be within 0..=1",
            ),
            (self.batch_rows > 0, "batch_rows must be > 0"),
            (
                self.max_concurrent_models > 0,
                "max_concurrent_models must be > 0",
            ),
            (self.row_group_rows > 0, "row_group_rows must be > 0"),
            (
                (1..=22).contains(&self.zstd_level),
                "zstd_level must be within 1..=22",
            ),
            (
                v.new_customer_days >= 0.0,
                "variables.new_customer_days must be >= 0",
            ),
            (
                v.clv_lifespan_years > 0.0,
                "variables.clv_lifespan_years must be > 0",
            ),
            (
                0.0 <= v.best_seller_rank
                    && v.best_seller_rank <= v.good_rank
                    && v.good_rank <= v.moderate_rank
                    && v.moderate_rank <= 1.0,
                "variables: need 0 <= best_seller_rank <= good_rank <= moderate_rank <= 1",
            ),
            (
                0.0 <= v.critical_stock
                    && v.critical_stock <= v.low_stock
                    && v.low_stock <= v.overstock,
                "variables: need 0 <= critical_stock <= low_stock <= overstock",
            ),
            (
                v.alpha > 0.0 && v.alpha < 1.0,
                "variables.alpha must be within (0, 1)",
            ),
            (
                v.srm_alpha > 0.0 && v.srm_alpha < 1.0,
                "variables.srm_alpha must be within (0, 1)",
            ),
            (
                v.control_share > 0.0 && v.control_share < 1.0,
                "variables.control_share must be within (0, 1)",
            ),
            (!v.ab_salt.is_empty(), "variables.ab_salt must not be empty"),
            (
                !v.control_variant.is_empty(),
                "variables.control_variant must not be empty",
            ),
            (
                v.sequential_tuning >= 1.0,
                "variables.sequential_tuning must be >= 1",
            ),
            (
                v.habit_window_days >= 1.0 && v.habit_threshold >= 1.0,
                "variables.habit_window_days and habit_threshold must be >= 1",
            ),
            (
                v.popularity_half_life_hours > 0.0
                    && v.freshness_half_life_days > 0.0
                    && v.ranking_window_days > 0.0,
                "variables: half-lives and ranking_window_days must be > 0",
            ),
            (
                [
                    v.view_weight,
                    v.click_weight,
                    v.add_to_cart_weight,
                    v.purchase_weight,
                    v.popularity_weight,
                    v.strategy_weight,
                ]
                .iter()
                .all(|w| *w >= 0.0),
                "variables: ranking weights must be >= 0",
            ),
        ];
        for (ok, message) in checks {
            if !ok {
                return Err(Error::Config(message.to_string()));
            }
        }
        v.arms()?;
        // NaN and infinity pass no comparison above, or slip through one-sided ones.
        // (TOML, unlike JSON, keeps NaN and infinity, so they can be found.)
        if let Ok(toml::Value::Table(table)) = toml::Value::try_from(v) {
            for (name, value) in table {
                if let toml::Value::Float(x) = value
                    && !x.is_finite()
                {
                    return Err(Error::Config(format!(
                        "variables.{name} = {x} is not a finite number"
                    )));
                }
            }
        }
        self.amplitude.validate()?;
        if self.output.as_os_str().is_empty() {
            return Err(Error::Config("output must not be empty".into()));
        }
        if self.engine == Engine::Ballista {
            self.validate_cluster()?;
        }
        self.validate_table_format()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ballista_engine_is_checked_before_any_io() {
        let mut c = Config::from_toml("engine = 'ballista'").unwrap();
        let err = c.validate().unwrap_err().to_string();
        if cfg!(feature = "distributed") {
            assert!(err.contains("needs a scheduler"), "{err}");
            c.scheduler = Some("http://x:1".into());
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains("scheme `http` is not df"), "{err}");
            c.scheduler = Some("df://sched".into());
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains("cannot see this machine's disk"), "{err}");
            assert!(err.contains("--output artifacts"), "{err}");
            c.output = PathBuf::from("s3://lake/medallion");
            c.validate().unwrap();
        } else {
            assert!(err.contains("`distributed` feature"), "{err}");
        }
        assert_eq!(
            scheduler_address("df://sched").unwrap(),
            ("sched".to_string(), 50050)
        );
        assert_eq!(
            scheduler_address("df://10.0.0.2:6000").unwrap(),
            ("10.0.0.2".to_string(), 6000)
        );
        assert!(Config::from_toml("engine = 'spark'").is_err());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = Config::from_toml("inptu = 'x'").unwrap_err();
        assert!(format!("{:?}", err).contains("inptu"), "{err:?}");
        let err = Config::from_toml("[variables]\nnew_customer_dayz = 3").unwrap_err();
        assert!(format!("{:?}", err).contains("new_customer_dayz"));
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.max_bad_row_fraction, 0.05);
        assert_eq!(c.memory_pool, MemoryPoolKind::Greedy);
        let fair = Config::from_toml("memory_pool = 'fair'").unwrap();
        assert_eq!(fair.memory_pool, MemoryPoolKind::Fair);
        assert!(Config::from_toml("memory_pool = 'lazy'").is_err());
        let m = c.variables.as_map();
        assert_eq!(m["new_customer_days"], 30.0);
        assert_eq!(m["clv_lifespan_years"], 3.0);
        c.validate().unwrap();
    }

    #[test]
    fn var_override_and_validation() {
        let mut c = Config::default();
        c.variables.set("clv_lifespan_years=5").unwrap();
        assert_eq!(c.variables.clv_lifespan_years, 5.0);
        assert!(c.variables.set("nope=1").is_err());
        assert!(c.variables.set("alpha=abc").is_err());
        for bad in ["alpha=NaN", "alpha=inf", "clv_lifespan_years=-inf"] {
            let err = c.variables.set(bad).unwrap_err().to_string();
            let name = bad.split('=').next().unwrap();
            assert!(err.contains(name) && err.contains("finite"), "{err}");
        }
        let mut infinite = Config::default();
        infinite.variables.overstock = f64::INFINITY;
        let err = infinite.validate().unwrap_err().to_string();
        assert!(err.contains("overstock") && err.contains("finite"), "{err}");
        c.max_bad_row_fraction = 2.0;
        assert!(c.validate().is_err());
    }

    /// docs/configuration.md is where defaults are written for people:
    /// every row must match `Config::default()`, and every key be there.
    #[test]
    fn the_configuration_document_lists_every_default() {
        let doc = include_str!("../../docs/configuration.md");
        let mut documented = BTreeMap::new();
        for line in doc.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let key = cells[1].trim_matches('`').to_string();
            let default = cells[2].trim_matches('`');
            let value = match default {
                "none" => serde_json::Value::Null,
                text => serde_json::from_str(text)
                    .unwrap_or_else(|_| serde_json::Value::String(text.to_string())),
            };
            documented.insert(key, value);
        }
        let mut actual = BTreeMap::new();
        flatten(
            "",
            &serde_json::to_value(Config::default()).unwrap(),
            &mut actual,
        );
        for (key, value) in &actual {
            let doc_value = documented
                .get(key)
                .unwrap_or_else(|| panic!("`{key}` is missing from docs/configuration.md"));
            let same = match (value.as_f64(), doc_value.as_f64()) {
                (Some(a), Some(b)) => a == b,
                _ => value == doc_value,
            };
            assert!(
                same,
                "`{key}`: the default is {value}, the document says {doc_value}"
            );
        }
        for key in documented.keys() {
            assert!(
                actual.contains_key(key),
                "docs/configuration.md lists `{key}`, which is no key"
            );
        }
    }

    /// `a.b` keys of the leaves of a config, tables flattened, lists and
    /// maps of values kept whole.
    fn flatten(
        prefix: &str,
        value: &serde_json::Value,
        out: &mut BTreeMap<String, serde_json::Value>,
    ) {
        match value.as_object() {
            Some(map) if prefix.is_empty() || ["variables", "amplitude"].contains(&prefix) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flatten(&key, v, out);
                }
            }
            _ => {
                out.insert(prefix.to_string(), value.clone());
            }
        }
    }
}

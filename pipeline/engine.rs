//! The one place that builds DataFusion's `SessionContext`: parallelism,
//! the memory pool and spill folder, settings and medallion's SQL functions
//! (`crate::udf`), and, with `engine = "ballista"`, the context whose
//! queries run on a cluster.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{
    FairSpillPool, GreedyMemoryPool, MemoryPool, TrackConsumersPool,
};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::config::{Config, Engine, MemoryPoolKind};
use crate::error::Result;
use crate::storage::StoreRegistry;

/// Run-wide facts the SQL functions expose.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub as_of: NaiveDate,
    /// Numeric variables, read with `param('<name>')`.
    pub variables: BTreeMap<String, f64>,
    /// Text variables, read with `setting('<name>')`.
    pub text_variables: BTreeMap<String, String>,
}

impl RunContext {
    pub fn new(as_of: NaiveDate, config: &Config) -> Self {
        RunContext {
            as_of,
            variables: config.variables.as_map(),
            text_variables: config.variables.text_map(),
        }
    }
}

/// Days since the Unix epoch of a date (Date32's representation).
pub fn date32(d: NaiveDate) -> i32 {
    d.num_days_from_ce() - 719_163
}

/// Build the session every model of a run is planned and executed in.
pub fn session_context(config: &Config, run: &RunContext) -> Result<SessionContext> {
    let partitions = if config.target_partitions == 0 {
        // The models running at once share the cores. Splitting every query
        // across all cores as well costs hash repartitioning and two-phase
        // aggregation for no gain on a busy machine: on 2 cores with 2 models
        // in flight, 1 partition each used 10 % less CPU than 2 (README,
        // "Performance").
        (cores() / config.max_concurrent_models.max(1)).max(1)
    } else {
        config.target_partitions
    };
    let ctx = SessionContext::new_with_config_rt(session_config(partitions), runtime_env(config)?);
    register_functions(&ctx, run);
    Ok(ctx)
}

/// With `engine = "ballista"`, a second session whose queries run on the
/// cluster (`crate::distributed`); `None` for the local engine. It has the
/// same settings and functions as [`session_context`]; its partitions are
/// spread over the executors, so `target_partitions = 0` means this
/// machine's core count rather than a share of it.
pub async fn cluster_context(config: &Config, run: &RunContext) -> Result<Option<SessionContext>> {
    if config.engine != Engine::Ballista {
        return Ok(None);
    }
    #[cfg(feature = "distributed")]
    {
        let scheduler = config.scheduler.as_deref().ok_or_else(|| {
            crate::error::Error::Config("engine `ballista` needs a scheduler".into())
        })?;
        let partitions = match config.target_partitions {
            0 => cores().max(2),
            n => n,
        };
        let ctx = crate::distributed::connect(
            scheduler,
            session_config(partitions),
            runtime_env(config)?,
        )
        .await?;
        register_functions(&ctx, run);
        Ok(Some(ctx))
    }
    #[cfg(not(feature = "distributed"))]
    {
        let _ = run;
        // `Config::validate` rejects this combination before any I/O.
        Err(crate::error::Error::Config(
            "engine `ballista` needs the `distributed` build feature".into(),
        ))
    }
}

/// Await `query`, which runs on the cluster, for at most `seconds` (0 = no
/// limit). Ballista's client waits for a job as long as the scheduler says
/// it is running, and a job that lost an executor at the wrong moment can
/// stay "running" forever; a nightly run must fail instead of hanging.
/// Dropping the future stops this process waiting; the scheduler may keep
/// the abandoned job until it fails or the scheduler restarts.
pub async fn within_cluster_limit<T>(
    seconds: u64,
    what: impl FnOnce() -> String,
    query: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    if seconds == 0 {
        return query.await;
    }
    tokio::time::timeout(std::time::Duration::from_secs(seconds), query)
        .await
        .unwrap_or_else(|_| {
            Err(crate::error::Error::ClusterTimeout {
                what: what(),
                seconds,
            })
        })
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn session_config(partitions: usize) -> SessionConfig {
    SessionConfig::new()
        .with_target_partitions(partitions)
        .with_information_schema(true)
        // Plain Utf8 rather than Utf8View: what every BI reader of our Parquet understands.
        .set_bool(
            "datafusion.execution.parquet.schema_force_view_types",
            false,
        )
        .set_str("datafusion.execution.time_zone", "+00:00")
}

/// Memory pool, spill folder and object stores of a session.
fn runtime_env(config: &Config) -> Result<Arc<RuntimeEnv>> {
    let mut runtime =
        RuntimeEnvBuilder::new().with_object_store_registry(Arc::new(StoreRegistry::default()));
    if config.memory_limit_mb > 0 {
        runtime = runtime.with_memory_pool(memory_pool(config));
    }
    let mode = match &config.spill_dir {
        Some(dir) => DiskManagerMode::Directories(vec![dir.clone()]),
        None => DiskManagerMode::OsTmpDirectory,
    };
    runtime = runtime.with_disk_manager_builder(DiskManagerBuilder::default().with_mode(mode));
    Ok(runtime.build_arc()?)
}

/// The pool behind `memory_limit_mb`, of the kind `memory_pool` names.
///
/// Greedy by default: DataFusion's fair pool holds every spilling operator
/// to an equal share of the limit whether or not the others use theirs, so
/// with a few small sorts registered beside it a large aggregation spilled
/// at a fraction of the limit: scale 10 took 153 s with it and 105 s with
/// the greedy pool, at the same peak RSS (4.3 and 4.4 GiB); the two daily
/// engagement models, run together, 47 s against 20 s. Tracking the largest
/// consumers makes an exhausted pool's error say who held it.
fn memory_pool(config: &Config) -> Arc<dyn MemoryPool> {
    let bytes = config.memory_limit_mb.saturating_mul(1024 * 1024);
    let top = NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN);
    match config.memory_pool {
        MemoryPoolKind::Greedy => {
            Arc::new(TrackConsumersPool::new(GreedyMemoryPool::new(bytes), top))
        }
        MemoryPoolKind::Fair => Arc::new(TrackConsumersPool::new(FairSpillPool::new(bytes), top)),
    }
}

/// Register medallion's SQL functions on a context (see [`crate::udf`]).
pub fn register_functions(ctx: &SessionContext, run: &RunContext) {
    crate::udf::register(ctx, run);
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::memory_pool::MemoryConsumer;

    #[test]
    fn the_greedy_pool_lets_one_operator_use_the_limit_the_fair_pool_splits_it() {
        let as_of = NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
        for (kind, big_fits) in [
            (MemoryPoolKind::Greedy, true),
            (MemoryPoolKind::Fair, false),
        ] {
            let config = Config {
                memory_limit_mb: 100,
                memory_pool: kind,
                ..Config::default()
            };
            let ctx = session_context(&config, &RunContext::new(as_of, &config)).unwrap();
            let pool = &ctx.runtime_env().memory_pool;
            let _idle = MemoryConsumer::new("idle sort")
                .with_can_spill(true)
                .register(pool);
            let big = MemoryConsumer::new("big aggregation")
                .with_can_spill(true)
                .register(pool);
            // 80 of 100 MiB while another spilling operator holds nothing:
            // the fair pool caps each of the two at 50.
            assert_eq!(big.try_grow(80 << 20).is_ok(), big_fits, "{kind:?}");
            if big_fits {
                // Greedy, but never past the limit.
                assert!(big.try_grow(30 << 20).is_err(), "{kind:?}");
            } else {
                assert!(big.try_grow(40 << 20).is_ok(), "{kind:?}: within its share");
            }
        }
    }

    #[tokio::test]
    async fn a_cluster_query_past_its_limit_fails_with_the_setting_named() {
        let never = std::future::pending::<Result<u64>>();
        let err = within_cluster_limit(1, || "the query of m".into(), never)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("the query of m"), "{text}");
        assert!(text.contains("cluster_query_timeout_seconds"), "{text}");
        assert!(matches!(
            err,
            crate::error::Error::ClusterTimeout { seconds: 1, .. }
        ));
        // Within the limit, or with no limit, the query's own outcome comes back.
        let quick = async { Ok::<u64, crate::error::Error>(7) };
        assert_eq!(
            within_cluster_limit(1, String::new, quick).await.unwrap(),
            7
        );
        let slow = async {
            tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
            Ok::<u64, crate::error::Error>(8)
        };
        assert_eq!(within_cluster_limit(0, String::new, slow).await.unwrap(), 8);
    }
}

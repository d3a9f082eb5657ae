//! The one place that builds DataFusion's `SessionContext`: parallelism,
//! the memory pool and spill folder, settings and medallion's SQL functions
//! (`crate::udf`). The cluster's context (`crate::cluster`) reuses its
//! settings and runtime.

use std::num::NonZeroUsize;
use std::sync::Arc;

use datafusion::common::config::ParquetOptions;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{
    FairSpillPool, GreedyMemoryPool, MemoryPool, TrackConsumersPool,
};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::config::{Config, MemoryPoolKind};
use crate::error::Result;
use crate::storage::StoreRegistry;
use crate::udf::RunContext;

/// What SQL from users may do outside a model: read. No DDL (`CREATE
/// EXTERNAL TABLE` on any path), no DML (`COPY … TO`, `INSERT`), no `SET`.
pub fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// Build the session every model of a run is planned and executed in.
pub fn session_context(config: &Config, run: &RunContext) -> Result<SessionContext> {
    let partitions = if config.target_partitions == 0 {
        // The models running at once share the cores: splitting each query
        // across all of them as well costs more than it gains (docs/performance.md).
        (cores() / config.max_concurrent_models.max(1)).max(1)
    } else {
        config.target_partitions
    };
    let ctx = SessionContext::new_with_config_rt(session_config(partitions), runtime_env(config)?);
    register_functions(&ctx, run);
    Ok(ctx)
}

pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

pub(crate) fn session_config(partitions: usize) -> SessionConfig {
    SessionConfig::new()
        .with_target_partitions(partitions)
        .with_information_schema(true)
        // Plain Utf8 rather than Utf8View: what every BI reader of our Parquet understands.
        .set_bool(
            "datafusion.execution.parquet.schema_force_view_types",
            false,
        )
        .set_str("datafusion.execution.time_zone", "+00:00")
        // Bronze and silver files carry no column index and no file any bloom
        // filter: looking for them cost a read per file of a 1,095-file
        // table's every filtered scan (docs/performance.md).
        .set_bool("datafusion.execution.parquet.enable_page_index", false)
        .set_bool("datafusion.execution.parquet.bloom_filter_on_read", false)
}

/// Change the Parquet read options of a session already built.
pub fn set_parquet_options(ctx: &SessionContext, change: impl FnOnce(&mut ParquetOptions)) {
    change(
        &mut ctx
            .state_ref()
            .write()
            .config_mut()
            .options_mut()
            .execution
            .parquet,
    );
}

/// Parquet footers kept in memory across the models of a run.
const FOOTER_CACHE_BYTES: usize = 256 << 20;
/// File statistics (from those footers) kept across the models of a run.
const STATISTICS_CACHE_BYTES: usize = 128 << 20;

/// Memory pool, spill folder and object stores of a session.
pub(crate) fn runtime_env(config: &Config) -> Result<Arc<RuntimeEnv>> {
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
    // No cached folder listings: a run republishes tables under new file
    // names (an incremental table's partitions) and must read what is there.
    // Footers and statistics are cached for the whole run, large enough for
    // every file of the five 1,095-day fact tables: at DataFusion's defaults
    // a nightly run filled the footer cache and read footers again.
    runtime = runtime.with_cache_manager(
        CacheManagerConfig::default()
            .with_list_files_cache_limit(0)
            .with_metadata_cache_limit(FOOTER_CACHE_BYTES)
            .with_file_statistics_cache_limit(STATISTICS_CACHE_BYTES),
    );
    Ok(runtime.build_arc()?)
}

/// The pool behind `memory_limit_mb`, of the kind `memory_pool` names.
/// Greedy by default: the fair pool makes a large aggregation spill at a
/// fraction of the limit while the rest is unused (docs/performance.md).
/// Tracking the largest consumers makes an exhausted pool's error say who
/// held it.
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
    use chrono::NaiveDate;
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
}

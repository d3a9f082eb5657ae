//! The cluster's processes (cargo feature `distributed`, on by default).
//!
//! One binary serves every role, so every role has medallion's SQL functions:
//! - the driver (`medallion run --engine ballista`) plans each silver and
//!   gold model and sends it to the scheduler ([`connect`]);
//! - `medallion scheduler` ([`serve_scheduler`]) splits plans into stages;
//! - `medallion executor` ([`serve_executor`]) runs the stages' tasks, reads
//!   the published tables and writes each model's files to the object store.
//!
//! Ballista decodes the functions of a plan by name, so the scheduler and
//! the executors register [`crate::udf::pure_functions`]; the run-constant
//! functions (`as_of_date()`, `param()`, `setting()`) are folded into
//! literals on the driver. Object-store URLs inside plans resolve through
//! [`StoreRegistry`], which builds S3 clients from each process's own
//! `AWS_*` variables.
//!
//! Without the feature, the same functions exist and say how to get it.

use std::path::PathBuf;

use clap::Args;

#[cfg(not(feature = "distributed"))]
use crate::error::{Error, Result};

#[cfg(feature = "distributed")]
pub use cluster::{connect, serve_executor, serve_scheduler};

/// `medallion scheduler`: a Ballista scheduler.
#[derive(Debug, Clone, Args)]
pub struct SchedulerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_host: String,

    /// Port for clients and executors.
    #[arg(long, default_value_t = 50050)]
    pub port: u16,

    /// Host name under which clients reach this scheduler.
    #[arg(long, default_value = "localhost")]
    pub external_host: String,

    /// Seconds without a heartbeat after which an executor counts as lost and
    /// its tasks are run elsewhere.
    #[arg(long, default_value_t = 60)]
    pub executor_timeout_seconds: u64,
}

/// `medallion executor`: a Ballista executor.
#[derive(Debug, Clone, Args)]
pub struct ExecutorArgs {
    /// The scheduler to register with, df://host:port.
    #[arg(
        long,
        default_value = "df://localhost:50050",
        env = "MEDALLION_SCHEDULER"
    )]
    pub scheduler: String,

    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_host: String,

    /// Host name under which the scheduler and other executors reach this one
    /// [default: this machine's address as the scheduler sees it].
    #[arg(long)]
    pub external_host: Option<String>,

    /// Port serving shuffle data (Arrow Flight) to other executors.
    #[arg(long, default_value_t = 50051)]
    pub port: u16,

    /// Port receiving tasks from the scheduler.
    #[arg(long, default_value_t = 50052)]
    pub grpc_port: u16,

    /// Tasks run at once; 0 = one per CPU core.
    #[arg(long, default_value_t = 0)]
    pub concurrent_tasks: usize,

    /// Folder for shuffle files [default: a new temporary folder].
    #[arg(long)]
    pub work_dir: Option<PathBuf>,

    /// Seconds between heartbeats to the scheduler; keep it well under the
    /// scheduler's --executor-timeout-seconds.
    #[arg(long, default_value_t = 10)]
    pub heartbeat_seconds: u64,

    /// Memory for this executor's operators in MiB, split among its tasks and
    /// spilling to disk beyond it; 0 = unlimited.
    #[arg(long, default_value_t = 4096)]
    pub memory_limit_mb: u64,
}

#[cfg(not(feature = "distributed"))]
fn not_built(role: &str) -> Error {
    Error::Config(format!(
        "`medallion {role}` needs a medallion built with the `distributed` feature: \
         cargo build --release (the `distributed` feature is on by default)"
    ))
}

/// Without the `distributed` feature: an error naming the build flag.
#[cfg(not(feature = "distributed"))]
pub async fn serve_scheduler(_: SchedulerArgs) -> Result<()> {
    Err(not_built("scheduler"))
}

/// Without the `distributed` feature: an error naming the build flag.
#[cfg(not(feature = "distributed"))]
pub async fn serve_executor(_: ExecutorArgs) -> Result<()> {
    Err(not_built("executor"))
}

#[cfg(feature = "distributed")]
mod cluster {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use ballista::prelude::SessionContextExt;
    use ballista_core::config::BALLISTA_ADAPTIVE_PLANNER_ENABLED;
    use ballista_core::extension::SessionConfigExt;
    use ballista_core::extension::{
        ballista_aggregate_functions, ballista_scalar_functions, ballista_window_functions,
    };
    use ballista_core::registry::BallistaFunctionRegistry;
    use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
    use ballista_scheduler::cluster::BallistaCluster;
    use ballista_scheduler::config::SchedulerConfig;
    use ballista_scheduler::scheduler_process::start_server;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
    use datafusion::execution::session_state::SessionState;
    use datafusion::logical_expr::ScalarUDF;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::{ExecutorArgs, SchedulerArgs};
    use crate::config::scheduler_address;
    use crate::error::{Error, Result};
    use crate::storage::StoreRegistry;

    fn ballista(error: impl std::fmt::Display) -> Error {
        Error::Cluster(error.to_string())
    }

    /// The driver's side: a context whose queries run on the cluster behind
    /// `scheduler` (`df://host:port`), with the local engine's settings
    /// (`config`) and runtime (object stores, memory pool).
    pub async fn connect(
        scheduler: &str,
        config: SessionConfig,
        runtime: Arc<RuntimeEnv>,
    ) -> Result<SessionContext> {
        let (host, port) = scheduler_address(scheduler)?;
        // Ballista 55's adaptive planner (AQE) re-plans some of our models
        // without end: silver_order_items (a union of two de-duplication
        // branches joined to two tables) grew past 148,000 one-task stages
        // in 20 minutes on the sample data. The static planner runs the same
        // plan in stages fixed up front, so medallion always uses it.
        let config = config
            .upgrade_for_ballista()
            .set_bool(BALLISTA_ADAPTIVE_PLANNER_ENABLED, false);
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .build();
        let ctx = SessionContext::remote_with_state(&format!("df://{host}:{port}"), state)
            .await
            .map_err(|e| {
                Error::Cluster(format!(
                    "cannot use the scheduler at {scheduler}: {e}; start one with `medallion scheduler`"
                ))
            })?;
        Ok(ctx)
    }

    fn medallion_functions() -> Vec<Arc<ScalarUDF>> {
        crate::udf::pure_functions()
            .into_iter()
            .map(Arc::new)
            .collect()
    }

    fn runtime(work_dir: Option<&std::path::Path>) -> datafusion::common::Result<Arc<RuntimeEnv>> {
        let mut builder =
            RuntimeEnvBuilder::new().with_object_store_registry(Arc::new(StoreRegistry::default()));
        if let Some(dir) = work_dir {
            builder = builder.with_temp_file_path(dir);
        }
        builder.build_arc()
    }

    /// The scheduler's session for each client session: Ballista's default
    /// one plus medallion's functions and the lazily built S3 stores.
    fn scheduler_session(config: SessionConfig) -> datafusion::common::Result<SessionState> {
        let mut scalars = ballista_scalar_functions();
        scalars.extend(medallion_functions());
        let mut aggregates = ballista_aggregate_functions();
        aggregates.extend(crate::udf::pure_aggregates().into_iter().map(Arc::new));
        Ok(SessionStateBuilder::new()
            .with_default_features()
            .with_config(config)
            .with_runtime_env(runtime(None)?)
            .with_optimizer_rules(ballista_core::optimizer::ballista_default_optimizer_rules())
            .with_scalar_functions(scalars)
            .with_aggregate_functions(aggregates)
            .with_window_functions(ballista_window_functions())
            .build())
    }

    /// `medallion scheduler`: serve until stopped.
    pub async fn serve_scheduler(args: SchedulerArgs) -> Result<()> {
        let address: SocketAddr = format!("{}:{}", args.bind_host, args.port)
            .parse()
            .map_err(|e| {
                Error::Config(format!(
                    "--bind-host {} --port {}: not an address: {e}",
                    args.bind_host, args.port
                ))
            })?;
        let timeout = args.executor_timeout_seconds.max(2);
        let config = SchedulerConfig {
            bind_host: args.bind_host.clone(),
            bind_port: args.port,
            external_host: args.external_host.clone(),
            executor_timeout_seconds: timeout,
            // Look for lost executors several times per timeout, so their
            // tasks move to the others soon after the timeout passes.
            expire_dead_executor_interval_seconds: (timeout / 4).max(1),
            ..SchedulerConfig::default()
        }
        .with_override_session_builder(Arc::new(scheduler_session));
        let cluster = BallistaCluster::new_from_config(&config)
            .await
            .map_err(ballista)?;
        tracing::info!(address = %address, "Ballista scheduler with medallion's functions listening.");
        start_server(cluster, address, Arc::new(config))
            .await
            .map_err(ballista)
    }

    /// `medallion executor`: register with the scheduler and run tasks until stopped.
    pub async fn serve_executor(args: ExecutorArgs) -> Result<()> {
        let (scheduler_host, scheduler_port) = scheduler_address(&args.scheduler)?;
        let mut registry = BallistaFunctionRegistry::default();
        for function in medallion_functions() {
            registry
                .scalar_functions
                .insert(function.name().to_string(), function);
        }
        for function in crate::udf::pure_aggregates() {
            registry
                .aggregate_functions
                .insert(function.name().to_string(), Arc::new(function));
        }
        let work_dir = args.work_dir.clone();
        let config = ExecutorProcessConfig {
            bind_host: args.bind_host.clone(),
            external_host: args.external_host.clone(),
            port: args.port,
            grpc_port: args.grpc_port,
            scheduler_host,
            scheduler_port,
            vcores: args.concurrent_tasks,
            work_dir: args
                .work_dir
                .as_ref()
                .map(|d| d.to_string_lossy().into_owned()),
            executor_heartbeat_interval_seconds: args.heartbeat_seconds.max(1),
            memory_pool_size: Some(args.memory_limit_mb.saturating_mul(1024 * 1024)),
            print_thread_info: false,
            override_function_registry: Some(Arc::new(registry)),
            override_runtime_producer: Some(Arc::new(move |_: &SessionConfig| {
                runtime(work_dir.as_deref())
            })),
            ..ExecutorProcessConfig::default()
        };
        tracing::info!(scheduler = %args.scheduler, port = args.port, grpc_port = args.grpc_port, "Ballista executor with medallion's functions starting.");
        start_executor_process(Arc::new(config))
            .await
            .map_err(ballista)
    }
}

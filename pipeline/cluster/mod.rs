//! Scale-out on Apache DataFusion Ballista: every piece of the cluster in one
//! place. The driver's context ([`cluster_context`]), the time limit on a
//! cluster query ([`within_cluster_limit`]), the scheduler and executor roles
//! (`serve`, cargo feature `distributed`), and the tables executors stage
//! on the object store (`stage`).

pub mod limit;
pub mod serve;
pub mod stage;

use datafusion::prelude::SessionContext;

use crate::config::{Config, Engine};
use crate::error::Result;
use crate::udf::RunContext;

pub use limit::within_cluster_limit;
pub use serve::{ExecutorArgs, SchedulerArgs, serve_executor, serve_scheduler};
pub use stage::write_on_cluster;

/// With `engine = "ballista"`, a second session whose queries run on the
/// cluster; `None` for the local engine. It has the
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
            0 => crate::engine::cores().max(2),
            n => n,
        };
        let ctx = serve::connect(
            scheduler,
            crate::engine::session_config(partitions),
            crate::engine::runtime_env(config)?,
        )
        .await?;
        crate::engine::register_functions(&ctx, run);
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

//! From flags to a validated [`Config`]: the config file first, then the
//! `MEDALLION_*` variables and flags clap has read (flags win), then
//! validation before any I/O.

use crate::cli::{CommonArgs, LayerArg, RunArgs};
use crate::config::Config;
use crate::error::Result;
use crate::models::Layer;

/// Copy each flag that was given over its config key.
macro_rules! override_from_flags {
    ($config:ident, $args:ident: $($field:ident),+ $(,)?) => {
        $(if let Some(value) = &$args.$field {
            $config.$field = value.clone();
        })+
    };
}

/// The config file (or defaults) with the flags shared by every command.
pub fn load_config(common: &CommonArgs) -> Result<Config> {
    let mut config = Config::load(common.config.as_deref())?;
    override_from_flags!(config, common: output, models);
    Ok(config)
}

/// The config of `medallion run`: file, variables, flags, validated.
pub fn run_config(args: &RunArgs) -> Result<Config> {
    let mut config = load_config(&args.common)?;
    override_from_flags!(config, args:
        input,
        max_bad_row_fraction,
        max_shrink_fraction,
        max_concurrent_models,
        target_partitions,
        memory_limit_mb,
        memory_pool,
        engine,
        cluster_query_timeout_seconds,
        lock_timeout_seconds,
        keep_runs,
    );
    config.allow_shrink |= args.allow_shrink;
    if let Some(format) = args.table_format {
        config.table_format = crate::config::TableFormats::all(format);
    }
    if let Some(url) = &args.scheduler {
        config.scheduler = Some(url.clone());
    }
    // MEDALLION_VAR_<NAME>=value first, so that flags win over the environment.
    let mut from_env: Vec<(String, String)> = std::env::vars()
        .filter_map(|(k, v)| {
            k.strip_prefix("MEDALLION_VAR_")
                .map(|n| (n.to_ascii_lowercase(), v))
        })
        .collect();
    from_env.sort();
    for (name, value) in from_env {
        config.variables.set(&format!("{name}={value}"))?;
    }
    for assignment in &args.vars {
        config.variables.set(assignment)?;
    }
    config.validate()?;
    Ok(config)
}

/// The layer a `--layer` flag names.
pub fn layer(arg: Option<LayerArg>) -> Option<Layer> {
    arg.map(|l| match l {
        LayerArg::Bronze => Layer::Bronze,
        LayerArg::Silver => Layer::Silver,
        LayerArg::Gold => Layer::Gold,
    })
}

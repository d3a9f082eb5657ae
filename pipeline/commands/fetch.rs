//! `medallion fetch amplitude`: list experiments, or fetch funnel envelopes
//! for one experiment from flags or for every experiment of the config.

use std::io::Write;

use super::flags::load_config;
use crate::error::{Error, Result};

pub async fn fetch_amplitude(args: crate::cli::FetchAmplitudeArgs) -> Result<()> {
    use crate::fetch::amplitude::{Client, Credentials, ExperimentConfig, FunnelQuery, fetch_all};
    let mut config = load_config(&args.common)?;
    if let Some(u) = &args.api_url {
        config.amplitude.api_url = u.clone();
    }
    if let Some(u) = &args.experiment_api_url {
        config.amplitude.experiment_api_url = u.clone();
    }
    if let Some(i) = &args.input {
        config.input = i.clone();
    }
    config.validate()?;
    if args.list_experiments {
        let key = std::env::var("AMPLITUDE_MANAGEMENT_KEY")
            .ok()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                Error::Config(
                    "AMPLITUDE_MANAGEMENT_KEY is not set: export an Experiment Management API key"
                        .into(),
                )
            })?;
        // Listing uses the Bearer management key only.
        let client = Client::new(
            config.amplitude.clone(),
            Credentials::new(String::new(), String::new()),
        )?;
        let experiments = client.list_experiments(&key).await?;
        let mut out = std::io::stdout().lock();
        for e in &experiments {
            let field = |k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
            let _ = writeln!(
                out,
                "{}\t{}\t{}",
                field("key"),
                field("state"),
                field("name")
            );
        }
        return Ok(());
    }
    let experiments = match &args.experiment {
        Some(id) => {
            let e = ExperimentConfig {
                id: id.clone(),
                start: args
                    .start
                    .ok_or_else(|| Error::Config("--start is required with --experiment".into()))?,
                end: args
                    .end
                    .ok_or_else(|| Error::Config("--end is required with --experiment".into()))?,
                events: args.events.clone(),
                variants: args.variants.clone(),
                shares: None,
                device: args.device.clone(),
                culture: args.culture.clone(),
            };
            e.validate()?;
            vec![e]
        }
        None if config.amplitude.experiments.is_empty() => {
            return Err(Error::Config(
                "nothing to fetch: pass --experiment/--start/--end/--events or list [[amplitude.experiments]] in medallion.toml".into(),
            ));
        }
        None => config.amplitude.experiments.clone(),
    };
    let queries: Vec<FunnelQuery> = experiments
        .iter()
        .flat_map(FunnelQuery::for_experiment)
        .collect();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| config.input.join(crate::ingest::amplitude::FUNNELS_DIR));
    let client = std::sync::Arc::new(Client::new(
        config.amplitude.clone(),
        Credentials::from_env()?,
    )?);
    let written = fetch_all(client, queries, &out).await?;
    let mut stdout = std::io::stdout().lock();
    for p in written {
        let _ = writeln!(stdout, "{}", p.display());
    }
    Ok(())
}

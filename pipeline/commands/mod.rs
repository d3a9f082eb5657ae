//! The commands behind the CLI, one file each: turn parsed flags into a
//! validated config (`flags`), call the library, print results to stdout.
//! Logs go to stderr.

pub mod fetch;
pub mod flags;
pub mod generate;
pub mod lineage;
pub mod query;
pub mod run;
pub mod test;

use crate::cli::{Cli, Command, FetchCommand};
use crate::cluster;
use crate::error::Result;

/// Run one parsed command line.
pub async fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(args) => run::run(args).await,
        Command::Generate(args) => generate::generate(args),
        Command::Test(args) => test::test(args).await,
        Command::Lineage(args) => lineage::lineage(args),
        Command::Fetch(FetchCommand::Amplitude(args)) => fetch::fetch_amplitude(args).await,
        Command::Query(args) => query::query(args).await,
        Command::Scheduler(args) => cluster::serve_scheduler(args).await,
        Command::Executor(args) => cluster::serve_executor(args).await,
    }
}

//! The commands behind the CLI, one file each: turn parsed flags into a
//! validated config (`flags`), call the library, print results to stdout.
//! Logs go to stderr.

pub mod docs;
pub mod fetch;
pub mod flags;
pub mod generate;
pub mod init;
pub mod lineage;
pub mod query;
pub mod run;
pub mod sources;
pub mod test;

use std::future::Future;

use crate::cli::{Cli, Command, FetchCommand};
use crate::cluster;
use crate::error::{Error, Result};
use crate::run::cancel::Stop;

/// Run one parsed command line.
pub async fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        // A run handles SIGTERM/SIGINT itself, to clean up and record them.
        Command::Run(args) => run::run(args).await,
        Command::Generate(args) => generate::generate(args),
        Command::Test(args) => stoppable(test::test(args)).await,
        Command::Lineage(args) => lineage::lineage(args),
        Command::Sources(args) => sources::sources(args),
        Command::Init(args) => init::init(args),
        Command::Fetch(FetchCommand::Amplitude(args)) => {
            stoppable(fetch::fetch_amplitude(args)).await
        }
        Command::Query(args) => stoppable(query::query(args)).await,
        Command::Docs(args) => stoppable(docs::docs(args)).await,
        Command::Scheduler(args) => cluster::serve_scheduler(args).await,
        Command::Executor(args) => cluster::serve_executor(args).await,
    }
}

/// A command that SIGTERM or SIGINT ends at its next await with exit 143 /
/// 130 (as PID 1 in a container a signal is otherwise ignored). Only for
/// commands whose writes are atomic (envelopes) or that only read.
async fn stoppable(command: impl Future<Output = Result<()>>) -> Result<()> {
    let mut stop = Stop::listen()?;
    tokio::select! {
        outcome = command => outcome,
        caught = stop.wait() => Err(Error::Cancelled {
            signal: caught.name(),
            code: caught.exit_code(),
        }),
    }
}

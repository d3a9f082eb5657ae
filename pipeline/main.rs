//! The `medallion` binary: parse flags, set up logging, run one command, and
//! turn the outcome into an exit code (README, "Exit codes"; docs/operations.md).

use std::process::ExitCode;

use clap::Parser;
use medallion::cli::{Cli, LogFormat};
use medallion::error::exit;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let outcome = runtime.block_on(medallion::commands::dispatch(cli));
    // A cancelled run may leave a CSV parser finishing its batch on a
    // blocking thread: do not wait for it, its output is discarded.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match outcome {
        Ok(()) => ExitCode::from(exit::OK),
        Err(error) => {
            eprintln!("error: {}", medallion::error::error_chain(&error));
            ExitCode::from(error.exit_code())
        }
    }
}

fn init_logging(cli: &Cli) {
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "info,datafusion=warn",
        (false, 1) => "debug,datafusion=info",
        _ => "trace",
    };
    // delta-rs reports every snapshot it loads at info: only its warnings
    // matter to a medallion user, unless asked for with -vv or MEDALLION_LOG.
    let default = match cli.verbose {
        0 | 1 => {
            format!("{default},deltalake_core=warn,buoyant_kernel=warn,buoyant_kernel_engine=warn")
        }
        _ => default.to_string(),
    };
    let filter =
        EnvFilter::try_from_env("MEDALLION_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    use std::io::IsTerminal;
    medallion::progress::enable(cli.log_format == LogFormat::Text && !cli.quiet);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| medallion::progress::LogWriter)
        .with_ansi(std::io::stderr().is_terminal());
    match cli.log_format {
        LogFormat::Json => builder.json().with_current_span(false).init(),
        LogFormat::Text => builder.with_target(false).init(),
    }
}

//! The command line (docs/operations.md): `run`, `generate`, `lineage`, `query`.
//!
//! Every flag that mirrors a config key also reads a `MEDALLION_*` variable;
//! flags win over variables, variables over the config file.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use crate::cluster::{ExecutorArgs, SchedulerArgs};

#[derive(Debug, Parser)]
#[command(
    name = "medallion",
    version,
    about = "Batch ETL: CSV and Amplitude exports to bronze/silver/gold Parquet with DataFusion SQL",
    long_about = "medallion lands CSV sources as typed bronze Parquet (quarantining unusable rows), \
                  builds silver and gold tables from the SQL models under sql/, and publishes each \
                  table atomically under the output root. Logs go to stderr, results to stdout."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log format on stderr: `text` for people, `json` for schedulers.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "MEDALLION_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// More logs (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only warnings and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline: ingest, then silver and gold models, publishing each table atomically.
    Run(RunArgs),
    /// Run the data tests of the published tables (no model is rebuilt).
    Test(TestArgs),
    /// Fetch raw inputs from an external API.
    #[command(subcommand)]
    Fetch(FetchCommand),
    /// Write deterministic synthetic CSV datasets for every source.
    Generate(GenerateArgs),
    /// Print the model DAG.
    Lineage(LineageArgs),
    /// List the declared sources: files, format, keys, columns and checks.
    Sources(SourcesArgs),
    /// Write a new project (config, an example source with data, a silver and a gold model) that runs as it is.
    Init(InitArgs),
    /// Run ad-hoc SQL over the published tables of an output root.
    Query(QueryArgs),
    /// Write a static HTML site of the project: graph, models, last run, experiments.
    Docs(DocsArgs),
    /// Serve as a Ballista scheduler with medallion's SQL functions (build feature `distributed`).
    Scheduler(SchedulerArgs),
    /// Serve as a Ballista executor with medallion's SQL functions (build feature `distributed`).
    Executor(ExecutorArgs),
}

/// Flags shared by commands that read the config.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Config file [default: ./medallion.toml when present].
    #[arg(long, env = "MEDALLION_CONFIG")]
    pub config: Option<PathBuf>,

    /// Output root: a folder or s3://bucket/prefix [config `output`].
    #[arg(long, env = "MEDALLION_OUTPUT")]
    pub output: Option<PathBuf>,

    /// Folder of SQL models [config `models`].
    #[arg(long, env = "MEDALLION_MODELS")]
    pub models: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Input folder (or s3://bucket/prefix) with one CSV or folder of CSVs per source
    /// [config `input`].
    #[arg(long, env = "MEDALLION_INPUT")]
    pub input: Option<PathBuf>,

    /// As-of date (YYYY-MM-DD): facts after it are ignored [default: yesterday, UTC].
    #[arg(long, env = "MEDALLION_AS_OF")]
    pub as_of: Option<chrono::NaiveDate>,

    /// Only this layer's models.
    #[arg(long, value_enum)]
    pub layer: Option<LayerArg>,

    /// Models to run: `model`, `+model` (with upstream), `model+` (with downstream); repeatable or comma-separated.
    #[arg(long, short = 's')]
    pub select: Vec<String>,

    /// Print the plan and exit without reading or writing data.
    #[arg(long)]
    pub dry_run: bool,

    /// Read every input file again and rebuild every selected model, even
    /// those whose inputs and code did not change since their last publish.
    #[arg(long)]
    pub full_refresh: bool,

    /// Run only the models the previous run left failed, cancelled or
    /// skipped because of a failure.
    #[arg(long, conflicts_with_all = ["select", "layer"])]
    pub retry: bool,

    /// Override a business variable, e.g. `--var clv_lifespan_years=5`; repeatable.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,

    /// Fraction of quarantined rows above which a source fails [config `max_bad_row_fraction`].
    #[arg(long, env = "MEDALLION_MAX_BAD_ROW_FRACTION")]
    pub max_bad_row_fraction: Option<f64>,

    /// Share by which a source's rows may fall against its published version
    /// before the source fails [config `max_shrink_fraction`].
    #[arg(long, env = "MEDALLION_MAX_SHRINK_FRACTION")]
    pub max_shrink_fraction: Option<f64>,

    /// Publish sources even when their row count fell by more than
    /// max_shrink_fraction (a source that really shrank).
    #[arg(long)]
    pub allow_shrink: bool,

    /// Models built at the same time [config `max_concurrent_models`].
    #[arg(long, env = "MEDALLION_MAX_CONCURRENT_MODELS")]
    pub max_concurrent_models: Option<usize>,

    /// DataFusion partitions per query; 0 = CPU cores / concurrent models [config `target_partitions`].
    #[arg(long, env = "MEDALLION_TARGET_PARTITIONS")]
    pub target_partitions: Option<usize>,

    /// Memory for DataFusion operators in MiB, spilling to disk beyond it; 0 = unlimited
    /// [config `memory_limit_mb`].
    #[arg(long, env = "MEDALLION_MEMORY_LIMIT_MB")]
    pub memory_limit_mb: Option<usize>,

    /// How operators share the memory limit: `greedy` (first come, first served) or `fair`
    /// (an equal share per spilling operator) [config `memory_pool`].
    #[arg(long, value_enum, env = "MEDALLION_MEMORY_POOL")]
    pub memory_pool: Option<crate::config::MemoryPoolKind>,

    /// Where silver and gold models run: `local` or `ballista` (a cluster; needs --scheduler
    /// and an s3:// --output) [config `engine`].
    #[arg(long, value_enum, env = "MEDALLION_ENGINE")]
    pub engine: Option<crate::config::Engine>,

    /// Ballista scheduler for --engine ballista, df://host:port [config `scheduler`].
    #[arg(long, env = "MEDALLION_SCHEDULER")]
    pub scheduler: Option<String>,

    /// Seconds one query may run on the cluster before its model fails; 0 = no limit
    /// [config `cluster_query_timeout_seconds`].
    #[arg(long, env = "MEDALLION_CLUSTER_QUERY_TIMEOUT_SECONDS")]
    pub cluster_query_timeout_seconds: Option<u64>,

    /// Seconds after which a run lock that was not renewed is taken over, from any host
    /// [config `lock_timeout_seconds`].
    #[arg(long, env = "MEDALLION_LOCK_TIMEOUT_SECONDS")]
    pub lock_timeout_seconds: Option<u64>,

    /// Run folders kept under _runs/ (the newest); 0 = all [config `keep_runs`].
    #[arg(long, env = "MEDALLION_KEEP_RUNS")]
    pub keep_runs: Option<usize>,

    /// Storage of silver and gold tables: `parquet` (folders of Parquet files) or `delta`
    /// (Delta Lake tables with versions) [config `table_format`].
    #[arg(long, value_enum, env = "MEDALLION_TABLE_FORMAT")]
    pub table_format: Option<crate::config::TableFormat>,
}

#[derive(Debug, Subcommand)]
pub enum FetchCommand {
    /// Funnel queries per experiment variant from Amplitude, written as envelopes (docs/models.md §1.3–1.4).
    /// Credentials: AMPLITUDE_API_KEY, AMPLITUDE_SECRET_KEY (and AMPLITUDE_MANAGEMENT_KEY for --list-experiments).
    Amplitude(FetchAmplitudeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct FetchAmplitudeArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Experiment id; without it, every experiment of `[[amplitude.experiments]]` in the config.
    #[arg(long, requires_all = ["start", "end", "events"])]
    pub experiment: Option<String>,

    /// First day (YYYY-MM-DD), inclusive.
    #[arg(long)]
    pub start: Option<chrono::NaiveDate>,

    /// Last day (YYYY-MM-DD), inclusive.
    #[arg(long)]
    pub end: Option<chrono::NaiveDate>,

    /// Funnel steps, comma-separated event names.
    #[arg(long, value_delimiter = ',')]
    pub events: Vec<String>,

    /// Variants to query.
    #[arg(long, value_delimiter = ',', default_value = "control,treatment")]
    pub variants: Vec<String>,

    /// All, mobile or desktop.
    #[arg(long, default_value = "All")]
    pub device: String,

    /// All, or a country code such as CL, BR, US.
    #[arg(long, default_value = "All")]
    pub culture: String,

    /// Where envelopes go [default: <input>/amplitude/funnels].
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// Input folder, for the default --out [config `input`].
    #[arg(long, env = "MEDALLION_INPUT")]
    pub input: Option<PathBuf>,

    /// Dashboard REST API base URL (EU residency, a test server).
    #[arg(long, env = "MEDALLION_AMPLITUDE_API_URL")]
    pub api_url: Option<String>,

    /// Experiment Management API base URL.
    #[arg(long, env = "MEDALLION_EXPERIMENT_API_URL")]
    pub experiment_api_url: Option<String>,

    /// List the project's experiments (Experiment Management API) instead of fetching funnels.
    #[arg(long)]
    pub list_experiments: bool,
}

#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Only this layer's models.
    #[arg(long, value_enum)]
    pub layer: Option<LayerArg>,

    /// Models whose tests run: `model`, `+model`, `model+`; repeatable or comma-separated.
    #[arg(long, short = 's')]
    pub select: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayerArg {
    Bronze,
    Silver,
    Gold,
}

#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// Size: 1 ≈ 100k customers, 1M orders, 2.5M order items, 5M events, 200k onboarded users.
    #[arg(long, default_value_t = 0.01)]
    pub scale: f64,

    /// Random seed: the same seed and scale give byte-identical files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Output folder.
    #[arg(long, default_value = "datasets")]
    pub out: PathBuf,

    /// Share of rows made malformed on purpose, to exercise quarantine.
    #[arg(long, default_value_t = 0.0)]
    pub dirty_rate: f64,

    /// Last day of generated activity (YYYY-MM-DD).
    #[arg(long, default_value = "2026-10-31")]
    pub end_date: chrono::NaiveDate,

    /// Write orders, order items, events and usage logs as folders of one
    /// file per day (`orders/2026-10-31.csv`), as nightly exports arrive.
    #[arg(long)]
    pub daily: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DocsArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Folder to write the site into [default: `_docs` under a local output root].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct LineageArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = LineageFormat::Text)]
    pub format: LineageFormat,
}

#[derive(Debug, Clone, Args)]
pub struct SourcesArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Input root the files are looked for under [config `input`].
    #[arg(long, env = "MEDALLION_INPUT")]
    pub input: Option<PathBuf>,

    /// Output format: a readable listing, or JSON for tools.
    #[arg(long, value_enum, default_value_t = SourcesFormat::Text)]
    pub format: SourcesFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourcesFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// Folder of the new project; created, and must be empty if it exists.
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LineageFormat {
    Text,
    Dot,
    Mermaid,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// The SQL to run; every published table is registered under its name.
    pub sql: String,

    /// Result format on stdout.
    #[arg(long, value_enum, default_value_t = QueryFormat::Table)]
    pub format: QueryFormat,

    /// Read Delta tables at an earlier version (time travel): `N` for every Delta table
    /// the query reads, `TABLE=N` for one; repeatable.
    #[arg(long = "version", value_name = "[TABLE=]N")]
    pub versions: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueryFormat {
    Table,
    Csv,
    Json,
}

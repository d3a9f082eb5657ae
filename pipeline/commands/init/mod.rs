//! `medallion init <dir>`: a new project that runs as it is: a config, one
//! declared source with a small CSV (a bad row and a corrected duplicate
//! included), one silver and one gold model with their tests. The files are
//! the ones under `template/`, built into the binary.

use std::path::Path;

use crate::cli::InitArgs;
use crate::error::{Error, Result};

/// (path inside the project, contents).
const FILES: &[(&str, &str)] = &[
    ("medallion.toml", include_str!("template/medallion.toml")),
    ("README.md", include_str!("template/README.md")),
    (
        "data/marketing_spend.csv",
        include_str!("template/data/marketing_spend.csv"),
    ),
    (
        "sql/bronze/bronze_marketing_spend.toml",
        include_str!("template/sql/bronze/bronze_marketing_spend.toml"),
    ),
    (
        "sql/silver/silver_marketing_spend.sql",
        include_str!("template/sql/silver/silver_marketing_spend.sql"),
    ),
    (
        "sql/silver/silver_marketing_spend.toml",
        include_str!("template/sql/silver/silver_marketing_spend.toml"),
    ),
    (
        "sql/gold/gold_marketing_daily.sql",
        include_str!("template/sql/gold/gold_marketing_daily.sql"),
    ),
    (
        "sql/gold/gold_marketing_daily.toml",
        include_str!("template/sql/gold/gold_marketing_daily.toml"),
    ),
];

pub fn init(args: InitArgs) -> Result<()> {
    write_project(&args.dir)?;
    println!(
        "Wrote a new project to {0}. Run it with: cd {0} && medallion run",
        args.dir.display()
    );
    Ok(())
}

/// Write the template into `dir`, which must be empty or absent: nothing
/// of an existing project is overwritten.
pub fn write_project(dir: &Path) -> Result<()> {
    if dir.is_file() {
        return Err(Error::Config(format!(
            "{} is a file; give a folder for the new project",
            dir.display()
        )));
    }
    if dir.is_dir()
        && std::fs::read_dir(dir)
            .map_err(|e| Error::io("cannot list", dir, e))?
            .next()
            .is_some()
    {
        return Err(Error::Config(format!(
            "{} is not empty; give a new or empty folder (nothing is overwritten)",
            dir.display()
        )));
    }
    for (path, contents) in FILES {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io("cannot create folder", parent, e))?;
        }
        std::fs::write(&target, contents).map_err(|e| Error::io("cannot write", &target, e))?;
    }
    Ok(())
}

//! `medallion docs`: write the static site (`crate::docs`) and say where.

use std::io::Write;

use super::flags::load_config;
use crate::cli::DocsArgs;
use crate::docs;
use crate::error::{Error, Result};
use crate::storage::{Root, parse_location};

pub async fn docs(args: DocsArgs) -> Result<()> {
    let config = load_config(&args.common)?;
    let out = match args.out {
        Some(out) => out,
        None if parse_location(&config.output)?.is_none() => config.output.join("_docs"),
        None => {
            return Err(Error::Config(format!(
                "the output root {} is not a local folder: pass --out DIR for the site",
                Root::open(&config.output)?.display()
            )));
        }
    };
    let site = docs::build(&config, &out).await?;
    let _ = writeln!(
        std::io::stdout().lock(),
        "{} pages written; open {}",
        site.pages,
        site.dir.join("index.html").display()
    );
    Ok(())
}

//! `medallion generate`: write the synthetic datasets and say what was written.

use std::io::Write;

use crate::cli::GenerateArgs;
use crate::error::Result;
use crate::generate;

pub fn generate(args: GenerateArgs) -> Result<()> {
    let summary = generate::generate(&generate::GenerateOptions {
        scale: args.scale,
        seed: args.seed,
        out: args.out.clone(),
        dirty_rate: args.dirty_rate,
        end_date: args.end_date,
        daily: args.daily,
    })?;
    // One line per source: daily folders are summed.
    let mut per_source: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for (file, rows) in summary {
        let relative = file.strip_prefix(&args.out).unwrap_or(&file);
        let source = relative
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        let entry = per_source.entry(source).or_default();
        entry.0 += 1;
        entry.1 += rows;
    }
    let mut out = std::io::stdout().lock();
    for (source, (files, rows)) in per_source {
        let _ = writeln!(
            out,
            "{rows:>10} rows  {files:>4} file(s)  {}",
            args.out.join(source).display()
        );
    }
    Ok(())
}

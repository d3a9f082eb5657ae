//! Progress on a terminal: one bar for the run, naming the models in flight.
//!
//! Shown only when stderr is a terminal and logs are text; a scheduler (no
//! terminal, or `--log-format json`) gets plain structured logs instead. Log
//! lines are printed "above" the bar through [`LogWriter`], so they never
//! garble it.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

static BAR: OnceLock<Mutex<Option<ProgressBar>>> = OnceLock::new();
static ENABLED: OnceLock<bool> = OnceLock::new();

fn slot() -> &'static Mutex<Option<ProgressBar>> {
    BAR.get_or_init(|| Mutex::new(None))
}

/// Allow progress bars (call once at start-up); they still need a terminal.
pub fn enable(enabled: bool) {
    let _ = ENABLED.set(enabled && std::io::stderr().is_terminal());
}

/// The progress of one run.
pub struct RunProgress {
    bar: Option<ProgressBar>,
    running: Mutex<Vec<String>>,
    /// Models skipped because nothing they are built from changed.
    unchanged: std::sync::atomic::AtomicUsize,
}

impl RunProgress {
    pub fn start(total: usize) -> RunProgress {
        if !ENABLED.get().copied().unwrap_or(false) {
            return RunProgress {
                bar: None,
                running: Mutex::new(Vec::new()),
                unchanged: Default::default(),
            };
        }
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} models  {wide_msg}",
        ) {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        if let Ok(mut slot) = slot().lock() {
            *slot = Some(bar.clone());
        }
        RunProgress {
            bar: Some(bar),
            running: Mutex::new(Vec::new()),
            unchanged: Default::default(),
        }
    }

    pub fn model_started(&self, name: &str) {
        if let (Some(bar), Ok(mut running)) = (&self.bar, self.running.lock()) {
            running.push(name.to_string());
            bar.set_message(running.join(", "));
        }
    }

    /// A model is done; `unchanged` when it was skipped as unchanged.
    pub fn model_finished(&self, name: &str, rows: u64, unchanged: bool) {
        use std::sync::atomic::Ordering;
        if unchanged {
            self.unchanged.fetch_add(1, Ordering::Relaxed);
        }
        if let (Some(bar), Ok(mut running)) = (&self.bar, self.running.lock()) {
            running.retain(|n| n != name);
            bar.inc(1);
            let last = if unchanged {
                "unchanged".to_string()
            } else {
                format!("{rows} rows")
            };
            bar.set_message(format!(
                "{} (last: {name}, {last}; {} unchanged)",
                running.join(", "),
                self.unchanged.load(Ordering::Relaxed)
            ));
        }
    }
}

impl Drop for RunProgress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if let Ok(mut slot) = slot().lock() {
            *slot = None;
        }
    }
}

/// A stderr writer for `tracing_subscriber` that prints above the bar.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = slot().lock().ok().and_then(|s| s.clone());
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf))?,
            None => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

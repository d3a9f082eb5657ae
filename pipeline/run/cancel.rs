//! Stopping a run (and `fetch`, `query`, `test`) on SIGTERM (`docker stop`,
//! Kubernetes) or SIGINT (Ctrl-C).
//!
//! The handlers are installed when a run starts, before it takes the lock,
//! so a signal from then on is handled: no model starts after it, running
//! ones are aborted at their next await (a table being published finishes
//! its atomic swap, so none is torn), the staging folder is removed,
//! `run_results.json` says `cancelled`, the lock is released and the process
//! exits 143 (SIGTERM) or 130 (SIGINT). As the container's PID 1, where the
//! kernel applies no default action, this is the only way a stop works.

use std::path::Path;

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::error::{Error, Result};

/// The signal that stopped a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caught {
    Term,
    Int,
}

impl Caught {
    pub fn name(self) -> &'static str {
        match self {
            Caught::Term => "SIGTERM",
            Caught::Int => "SIGINT",
        }
    }

    /// The signal's name, back from run_results.json.
    pub fn from_name(name: &str) -> Option<Caught> {
        match name {
            "SIGTERM" => Some(Caught::Term),
            "SIGINT" => Some(Caught::Int),
            _ => None,
        }
    }

    /// 128 + the signal's number, as shells report a process a signal ended.
    pub fn exit_code(self) -> u8 {
        match self {
            Caught::Term => crate::error::exit::SIGTERM,
            Caught::Int => crate::error::exit::SIGINT,
        }
    }
}

/// The run's signal handlers, and the signal once one came.
pub struct Stop {
    term: Signal,
    int: Signal,
    caught: Option<Caught>,
}

impl Stop {
    /// Install the handlers for SIGTERM and SIGINT.
    pub fn listen() -> Result<Stop> {
        let install = |kind: SignalKind| {
            signal(kind).map_err(|e| {
                Error::io(
                    "cannot install a signal handler",
                    Path::new("SIGTERM/SIGINT"),
                    e,
                )
            })
        };
        Ok(Stop {
            term: install(SignalKind::terminate())?,
            int: install(SignalKind::interrupt())?,
            caught: None,
        })
    }

    /// Wait for a signal; at once if one came already.
    pub async fn wait(&mut self) -> Caught {
        if let Some(c) = self.caught {
            return c;
        }
        let c = tokio::select! {
            _ = self.term.recv() => Caught::Term,
            _ = self.int.recv() => Caught::Int,
        };
        tracing::warn!(
            signal = c.name(),
            "Stopping: nothing new starts, work in progress is aborted."
        );
        self.caught = Some(c);
        c
    }

    /// The signal received so far, if any.
    pub fn caught(&self) -> Option<Caught> {
        self.caught
    }
}

//! The run lock of an output root: one run at a time. Locally a file created
//! with `create_new`; on an object store a conditional put (see `object.rs`).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::local::Layout;
use crate::error::{Error, Result};

/// Who holds the lock of an output root.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LockHolder {
    pub run_id: String,
    pub pid: u32,
    pub host: String,
    pub started_at: String,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (pid {} on {}, started {})",
            self.run_id, self.pid, self.host, self.started_at
        )
    }
}

/// The run lock of an output root; released (file removed) on drop.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
}

impl RunLock {
    /// Take the lock, or fail at once naming the holder. A lock whose holder
    /// process no longer exists on this host is taken over.
    pub fn acquire(layout: &Layout, holder: &LockHolder) -> Result<RunLock> {
        fs::create_dir_all(&layout.root)
            .map_err(|e| Error::io("cannot create output root", &layout.root, e))?;
        let path = layout.lock_file();
        let body = serde_json::to_vec_pretty(holder)?;
        for _ in 0..3 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    file.write_all(&body)
                        .map_err(|e| Error::io("cannot write lock", &path, e))?;
                    return Ok(RunLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let existing = fs::read(&path)
                        .ok()
                        .and_then(|b| serde_json::from_slice::<LockHolder>(&b).ok());
                    match existing {
                        Some(other) if !is_stale(&other) => {
                            return Err(Error::Locked {
                                root: layout.root.display().to_string(),
                                holder: other.to_string(),
                                lock_file: path,
                            });
                        }
                        Some(other) => {
                            tracing::warn!(holder = %other, "Taking over a lock left by a process that no longer runs.");
                            let _ = fs::remove_file(&path);
                        }
                        None => {
                            // Being written right now, or garbage: give the writer a moment.
                            std::thread::sleep(std::time::Duration::from_millis(100));
                            let still_bad = fs::read(&path)
                                .ok()
                                .and_then(|b| serde_json::from_slice::<LockHolder>(&b).ok())
                                .is_none();
                            if still_bad {
                                tracing::warn!(lock = %path.display(), "Removing an unreadable lock file.");
                                let _ = fs::remove_file(&path);
                            }
                        }
                    }
                }
                Err(e) => return Err(Error::io("cannot create lock", &path, e)),
            }
        }
        Err(Error::Locked {
            root: layout.root.display().to_string(),
            holder: "another run (the lock changed hands while we waited)".into(),
            lock_file: path,
        })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// This host's name, for lock files.
pub fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// A holder is stale when it ran on this host and its process is gone.
pub fn is_stale(holder: &LockHolder) -> bool {
    holder.host == host_name() && !process_alive(holder.pid)
}

#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_is_exclusive_and_dead_holders_are_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::new(tmp.path());
        let me = LockHolder {
            run_id: "r1".into(),
            pid: std::process::id(),
            host: host_name(),
            started_at: "now".into(),
        };
        let lock = RunLock::acquire(&layout, &me).unwrap();
        let err = RunLock::acquire(
            &layout,
            &LockHolder {
                run_id: "r2".into(),
                ..me.clone()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("r1"), "{err}");
        drop(lock);
        // A holder whose pid does not exist is stale.
        let dead = LockHolder {
            run_id: "dead".into(),
            pid: 0x3fff_fff0,
            ..me.clone()
        };
        fs::write(layout.lock_file(), serde_json::to_vec(&dead).unwrap()).unwrap();
        let _lock = RunLock::acquire(&layout, &me).unwrap();
    }
}

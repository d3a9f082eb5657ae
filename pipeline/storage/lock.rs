//! The run lock of an output root, as a lease: one run at a time, and a
//! run that died (a killed container, a lost pod, a rebooted host) never
//! locks the root out for good.
//!
//! The lock is a folder `_lock/` of numbered *epochs*; the highest epoch is
//! the lock. A run takes the lock by creating the next epoch with an
//! exclusive create (`If-None-Match: *` on S3, a no-clobber link locally,
//! both through `object_store`), so of two runs reaching for the same number
//! exactly one gets it; the winner then checks that no higher epoch exists
//! (a slow racer that created a lower one backs off). Taking over a stale
//! holder is the same step, so takeover is as atomic as a fresh take: the
//! stale epoch is never deleted first.
//!
//! The holder rewrites its epoch every `lock_timeout_seconds / 5`. Another
//! run treats the lock as stale when it was not refreshed for
//! `lock_timeout_seconds` (any host), or, on the same host name, when the
//! host has rebooted since, its process is gone, or it names our own pid
//! without being held by this process (a restarted container is pid 1 again).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Name of the lock folder under an output root.
pub const LOCK_DIR: &str = "_lock";

/// How many times a run re-reads the lock while others change it.
const ATTEMPTS: usize = 20;

/// Run ids whose lease this process holds (a lock naming our pid is ours
/// only if listed here).
static HELD: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

fn held() -> std::sync::MutexGuard<'static, BTreeSet<String>> {
    // The set stays consistent whatever panicked while holding it.
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Who holds the lock of an output root.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LockHolder {
    pub run_id: String,
    pub pid: u32,
    pub host: String,
    pub started_at: String,
    /// The kernel's boot id of the holder's host (empty when unknown).
    #[serde(default)]
    pub boot_id: String,
    /// When the holder last renewed its lease (RFC 3339).
    #[serde(default)]
    pub refreshed_at: String,
}

impl LockHolder {
    /// This process as the holder of run `run_id`.
    pub fn this_process(run_id: &str, started_at: DateTime<Utc>) -> LockHolder {
        LockHolder {
            run_id: run_id.to_string(),
            pid: std::process::id(),
            host: host_name(),
            started_at: started_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            boot_id: boot_id(),
            refreshed_at: now_text(),
        }
    }

    /// Why this holder's lease no longer counts, judged by `me`; `None`
    /// when it is alive.
    pub fn stale_reason(&self, me: &LockHolder, timeout: Duration) -> Option<String> {
        let refreshed = DateTime::parse_from_rfc3339(&self.refreshed_at)
            .or_else(|_| DateTime::parse_from_rfc3339(&self.started_at))
            .map(|t| t.with_timezone(&Utc));
        let Ok(refreshed) = refreshed else {
            return Some("it records no time it was refreshed".into());
        };
        let age = (Utc::now() - refreshed).num_seconds();
        if !timeout.is_zero() && age > timeout.as_secs() as i64 {
            return Some(format!(
                "it was not refreshed for {age} s (lock_timeout_seconds = {})",
                timeout.as_secs()
            ));
        }
        if self.host != me.host {
            return None;
        }
        if !self.boot_id.is_empty() && !me.boot_id.is_empty() && self.boot_id != me.boot_id {
            return Some("its host has restarted since".into());
        }
        if self.pid == me.pid && !held().contains(&self.run_id) {
            return Some(
                "it names this process's pid but this process does not hold it (a restarted container)"
                    .into(),
            );
        }
        if !process_alive(self.pid) {
            return Some("its process no longer runs".into());
        }
        None
    }
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (pid {} on {}, started {}, last refreshed {})",
            self.run_id, self.pid, self.host, self.started_at, self.refreshed_at
        )
    }
}

/// A held lease on an output root. Release it with [`Lease::release`];
/// dropped unreleased it stops refreshing and removes its epoch locally.
#[derive(Debug)]
pub struct Lease {
    store: Arc<dyn ObjectStore>,
    dir: ObjectPath,
    epoch: u64,
    run_id: String,
    /// The local lock folder, for a root on this machine's disk.
    local_dir: Option<PathBuf>,
    refresher: Option<tokio::task::JoinHandle<()>>,
    lost: Arc<AtomicBool>,
    released: bool,
}

impl Lease {
    /// Take the lock under `dir` of `store`, or fail at once naming the
    /// live holder (exit 4). `shown` names the root in messages.
    pub async fn acquire(
        store: Arc<dyn ObjectStore>,
        dir: ObjectPath,
        shown: &str,
        local_dir: Option<PathBuf>,
        mut holder: LockHolder,
        timeout: Duration,
    ) -> Result<Lease> {
        let locked = |who: String, at: &ObjectPath| Error::Locked {
            root: shown.to_string(),
            holder: who,
            lock_file: local_dir
                .as_ref()
                .map_or_else(|| PathBuf::from(at.as_ref()), |d| d.join(epoch_name_of(at))),
        };
        for _ in 0..ATTEMPTS {
            let epochs = list_epochs(&store, &dir).await?;
            let next = match epochs.last() {
                None => 1,
                Some((n, path)) => match read_holder(&store, path).await? {
                    // Released between the listing and the read: look again.
                    Read::Gone => continue,
                    Read::Holder(other) => match other.stale_reason(&holder, timeout) {
                        None => return Err(locked(other.to_string(), path)),
                        Some(why) => {
                            tracing::warn!(holder = %other, reason = %why, "Taking over a stale run lock.");
                            n + 1
                        }
                    },
                    // Being written right now, or damaged: a damaged one counts
                    // as stale once it is older than a moment.
                    Read::Unreadable { age } if age < Duration::from_secs(5) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    Read::Unreadable { .. } => {
                        tracing::warn!(lock = %path, "Taking over an unreadable run lock.");
                        n + 1
                    }
                },
            };
            holder.refreshed_at = now_text();
            let path = dir.clone().join(epoch_name(next));
            let body = serde_json::to_vec_pretty(&holder)?;
            // Known as ours before it exists: a run of this same process that
            // reads it meanwhile must not take it for a dead incarnation's.
            held().insert(holder.run_id.clone());
            let put = store
                .put_opts(
                    &path,
                    PutPayload::from(body),
                    PutOptions {
                        mode: PutMode::Create,
                        ..PutOptions::default()
                    },
                )
                .await;
            match put {
                Ok(_) => {}
                Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. }) => {
                    held().remove(&holder.run_id);
                    continue;
                }
                Err(e) => {
                    held().remove(&holder.run_id);
                    return Err(e.into());
                }
            }
            // A racer that read an older listing may have created a higher
            // epoch than ours meanwhile: the highest one wins.
            let now = match list_epochs(&store, &dir).await {
                Ok(now) => now,
                Err(e) => {
                    let _ = store.delete(&path).await;
                    held().remove(&holder.run_id);
                    return Err(e);
                }
            };
            if now.last().is_some_and(|(top, _)| *top > next) {
                let _ = store.delete(&path).await;
                held().remove(&holder.run_id);
                continue;
            }
            for (n, old) in &now {
                if *n < next {
                    let _ = store.delete(old).await;
                }
            }
            let lost = Arc::new(AtomicBool::new(false));
            let refresher = tokio::spawn(refresh(
                Arc::clone(&store),
                dir.clone(),
                next,
                holder.clone(),
                timeout,
                Arc::clone(&lost),
            ));
            return Ok(Lease {
                store,
                dir,
                epoch: next,
                run_id: holder.run_id,
                local_dir,
                refresher: Some(refresher),
                lost,
                released: false,
            });
        }
        Err(locked(
            "another run (the lock changed hands while we waited)".into(),
            &dir,
        ))
    }

    /// True once another run has taken the lock over (this run was too
    /// slow to refresh it): nothing more may be published.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// A flag that turns true when the lease is lost, for the run's tasks.
    pub fn lost_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.lost)
    }

    /// Stop refreshing and remove the lock (with any older epoch, all of
    /// whose holders lost to us).
    pub async fn release(mut self) {
        if let Some(r) = self.refresher.take() {
            r.abort();
        }
        let epochs = list_epochs(&self.store, &self.dir)
            .await
            .unwrap_or_default();
        let ours_is_top = epochs.last().is_none_or(|(n, _)| *n <= self.epoch);
        for (n, path) in &epochs {
            let mine_or_older = if ours_is_top {
                *n <= self.epoch
            } else {
                *n == self.epoch
            };
            if mine_or_older && let Err(e) = self.store.delete(path).await {
                tracing::warn!(lock = %path, error = %e, "Could not remove the run lock; the next run takes it over once its lease runs out.");
            }
        }
        if let Some(dir) = &self.local_dir {
            // Only succeeds when empty: a racer's new epoch keeps it.
            let _ = std::fs::remove_dir(dir);
        }
        self.released = true;
        held().remove(&self.run_id);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(r) = self.refresher.take() {
            r.abort();
        }
        if !self.released {
            held().remove(&self.run_id);
            if let Some(dir) = &self.local_dir {
                let _ = std::fs::remove_file(dir.join(epoch_name(self.epoch)));
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}

/// Renew the lease until aborted; stop and raise `lost` if a higher epoch
/// appears (another run judged us stale).
async fn refresh(
    store: Arc<dyn ObjectStore>,
    dir: ObjectPath,
    epoch: u64,
    mut holder: LockHolder,
    timeout: Duration,
    lost: Arc<AtomicBool>,
) {
    if timeout.is_zero() {
        return;
    }
    let every = (timeout / 5).max(Duration::from_millis(200));
    let path = dir.clone().join(epoch_name(epoch));
    loop {
        tokio::time::sleep(every).await;
        match list_epochs(&store, &dir).await {
            Ok(epochs) if epochs.last().is_some_and(|(top, _)| *top > epoch) => {
                lost.store(true, Ordering::Relaxed);
                tracing::error!(run_id = %holder.run_id, "Another run took over this run's lock: nothing more is published.");
                return;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "Could not read the run lock to refresh it.");
                continue;
            }
        }
        holder.refreshed_at = now_text();
        let Ok(body) = serde_json::to_vec_pretty(&holder) else {
            continue;
        };
        if let Err(e) = store.put(&path, PutPayload::from(body)).await {
            tracing::warn!(error = %e, "Could not refresh the run lock.");
        }
    }
}

enum Read {
    Holder(LockHolder),
    Gone,
    Unreadable { age: Duration },
}

async fn read_holder(store: &Arc<dyn ObjectStore>, path: &ObjectPath) -> Result<Read> {
    let got = match store.get(path).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => return Ok(Read::Gone),
        Err(e) => return Err(e.into()),
    };
    let modified = got.meta.last_modified;
    let bytes = match got.bytes().await {
        Ok(b) => b,
        Err(object_store::Error::NotFound { .. }) => return Ok(Read::Gone),
        Err(e) => return Err(e.into()),
    };
    Ok(match serde_json::from_slice::<LockHolder>(&bytes) {
        Ok(holder) => Read::Holder(holder),
        Err(_) => Read::Unreadable {
            age: (Utc::now() - modified).to_std().unwrap_or_default(),
        },
    })
}

/// The epochs under `dir`, ascending.
async fn list_epochs(
    store: &Arc<dyn ObjectStore>,
    dir: &ObjectPath,
) -> Result<Vec<(u64, ObjectPath)>> {
    let metas: Vec<_> = store.list(Some(dir)).try_collect().await?;
    let mut epochs: Vec<(u64, ObjectPath)> = metas
        .into_iter()
        .filter_map(|m| {
            let n = m.location.filename()?.parse::<u64>().ok()?;
            Some((n, m.location))
        })
        .collect();
    epochs.sort_by_key(|(n, _)| *n);
    Ok(epochs)
}

fn epoch_name(n: u64) -> String {
    format!("{n:020}")
}

fn epoch_name_of(path: &ObjectPath) -> String {
    path.filename().unwrap_or_default().to_string()
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// This host's name, for lock files.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// The kernel's id of the current boot (empty where there is none).
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
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
    use object_store::local::LocalFileSystem;

    fn store(dir: &std::path::Path) -> Arc<dyn ObjectStore> {
        Arc::new(LocalFileSystem::new_with_prefix(dir).unwrap())
    }

    async fn take(store: &Arc<dyn ObjectStore>, run_id: &str, timeout: Duration) -> Result<Lease> {
        Lease::acquire(
            Arc::clone(store),
            ObjectPath::from(LOCK_DIR),
            "root",
            None,
            LockHolder::this_process(run_id, Utc::now()),
            timeout,
        )
        .await
    }

    fn plant(dir: &std::path::Path, epoch: u64, holder: &LockHolder) {
        let lock = dir.join(LOCK_DIR);
        std::fs::create_dir_all(&lock).unwrap();
        std::fs::write(
            lock.join(epoch_name(epoch)),
            serde_json::to_vec(holder).unwrap(),
        )
        .unwrap();
    }

    fn minutes_ago(m: i64) -> String {
        (Utc::now() - chrono::Duration::minutes(m)).to_rfc3339()
    }

    #[tokio::test]
    async fn a_live_lease_is_exclusive_and_released_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let lease = take(&s, "r1", Duration::from_secs(600)).await.unwrap();
        let err = take(&s, "r2", Duration::from_secs(600)).await.unwrap_err();
        assert!(err.to_string().contains("r1"), "{err}");
        assert_eq!(err.exit_code(), crate::error::exit::LOCKED);
        lease.release().await;
        assert!(
            list_epochs(&s, &ObjectPath::from(LOCK_DIR))
                .await
                .unwrap()
                .is_empty()
        );
        take(&s, "r3", Duration::from_secs(600))
            .await
            .unwrap()
            .release()
            .await;
    }

    #[tokio::test]
    async fn stale_holders_are_taken_over_and_live_ones_are_not() {
        let me = LockHolder::this_process("me", Utc::now());
        let cases = [
            // (holder, taken over?)
            (
                LockHolder {
                    run_id: "restarted-container".into(),
                    ..me.clone()
                },
                true,
            ),
            (
                LockHolder {
                    run_id: "other-host-expired".into(),
                    host: "another-host".into(),
                    pid: 1,
                    refreshed_at: minutes_ago(11),
                    ..me.clone()
                },
                true,
            ),
            (
                LockHolder {
                    run_id: "dead-pid".into(),
                    pid: 0x3fff_fff0,
                    ..me.clone()
                },
                true,
            ),
            (
                LockHolder {
                    run_id: "before-reboot".into(),
                    pid: 1,
                    boot_id: "another-boot".into(),
                    ..me.clone()
                },
                !me.boot_id.is_empty(),
            ),
            (
                LockHolder {
                    run_id: "other-host-live".into(),
                    host: "another-host".into(),
                    pid: 1,
                    refreshed_at: minutes_ago(1),
                    ..me.clone()
                },
                false,
            ),
        ];
        for (holder, stale) in cases {
            let tmp = tempfile::tempdir().unwrap();
            plant(tmp.path(), 7, &holder);
            let s = store(tmp.path());
            let got = take(&s, "me", Duration::from_secs(600)).await;
            assert_eq!(got.is_ok(), stale, "{holder}: {got:?}");
            if let Ok(lease) = got {
                assert_eq!(lease.epoch, 8, "takeover is the next epoch");
                lease.release().await;
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_runs_racing_for_a_stale_lock_exactly_one_wins() {
        for round in 0..40 {
            let tmp = tempfile::tempdir().unwrap();
            let stale = LockHolder {
                run_id: "gone".into(),
                host: "another-host".into(),
                pid: 1,
                refreshed_at: minutes_ago(30),
                ..LockHolder::this_process("gone", Utc::now())
            };
            plant(tmp.path(), 3, &stale);
            let s = store(tmp.path());
            let racers: Vec<_> = (0..6)
                .map(|i| {
                    let s = Arc::clone(&s);
                    tokio::spawn(async move {
                        take(&s, &format!("racer-{round}-{i}"), Duration::from_secs(600)).await
                    })
                })
                .collect();
            let mut winners = Vec::new();
            for r in racers {
                match r.await.unwrap() {
                    Ok(lease) => winners.push(lease),
                    Err(e) => assert_eq!(e.exit_code(), crate::error::exit::LOCKED, "{e}"),
                }
            }
            assert_eq!(winners.len(), 1, "round {round}: exactly one run wins");
        }
    }

    #[tokio::test]
    async fn a_lease_is_refreshed_and_a_lost_one_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let lease = take(&s, "slow", Duration::from_secs(1)).await.unwrap();
        let path = ObjectPath::from(LOCK_DIR).join(epoch_name(lease.epoch));
        let first = match read_holder(&s, &path).await.unwrap() {
            Read::Holder(h) => h.refreshed_at,
            _ => panic!("lease unreadable"),
        };
        tokio::time::sleep(Duration::from_millis(700)).await;
        let later = match read_holder(&s, &path).await.unwrap() {
            Read::Holder(h) => h.refreshed_at,
            _ => panic!("lease unreadable"),
        };
        assert!(later > first, "refreshed: {first} -> {later}");
        // Another run takes a higher epoch: the holder notices within a refresh.
        plant(
            tmp.path(),
            lease.epoch + 1,
            &LockHolder::this_process("usurper", Utc::now()),
        );
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(lease.is_lost());
    }
}

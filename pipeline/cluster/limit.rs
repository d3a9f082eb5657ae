//! A time limit on every query that runs on the cluster.

use crate::error::{Error, Result};

/// Await `query`, which runs on the cluster, for at most `seconds` (0 = no
/// limit). Ballista's client waits for a job as long as the scheduler says
/// it is running, and a job that lost an executor at the wrong moment can
/// stay "running" forever; a nightly run must fail instead of hanging.
/// Dropping the future stops this process waiting; the scheduler may keep
/// the abandoned job until it fails or the scheduler restarts.
pub async fn within_cluster_limit<T>(
    seconds: u64,
    what: impl FnOnce() -> String,
    query: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    if seconds == 0 {
        return query.await;
    }
    tokio::time::timeout(std::time::Duration::from_secs(seconds), query)
        .await
        .unwrap_or_else(|_| {
            Err(Error::ClusterTimeout {
                what: what(),
                seconds,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_cluster_query_past_its_limit_fails_with_the_setting_named() {
        let never = std::future::pending::<Result<u64>>();
        let err = within_cluster_limit(1, || "the query of m".into(), never)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("the query of m"), "{text}");
        assert!(text.contains("cluster_query_timeout_seconds"), "{text}");
        assert!(matches!(err, Error::ClusterTimeout { seconds: 1, .. }));
        // Within the limit, or with no limit, the query's own outcome comes back.
        let quick = async { Ok::<u64, Error>(7) };
        assert_eq!(
            within_cluster_limit(1, String::new, quick).await.unwrap(),
            7
        );
        let slow = async {
            tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
            Ok::<u64, Error>(8)
        };
        assert_eq!(within_cluster_limit(0, String::new, slow).await.unwrap(), 8);
    }
}

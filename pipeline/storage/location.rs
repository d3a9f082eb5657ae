//! Locations: a local path or an object-store URL, the object store behind a
//! URL, and the store registry every session (and every cluster process)
//! resolves table URLs through.

use std::path::Path;
use std::sync::Arc;

use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use object_store::ObjectStore;
use url::Url;

use crate::error::{Error, Result};

/// Map a URL to its object store: the one place that knows the schemes.
///
/// - `s3://bucket/...`: `AmazonS3Builder::from_env`, so credentials, region
///   and endpoint come from the standard AWS variables (`AWS_ACCESS_KEY_ID`,
///   `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
///   `AWS_ALLOW_HTTP` for MinIO on plain HTTP).
/// - `file:///path`: the local filesystem through the same interface.
pub fn object_store_for(url: &Url) -> Result<Arc<dyn ObjectStore>> {
    match url.scheme() {
        "s3" | "s3a" => {
            let bucket = url.host_str().filter(|b| !b.is_empty()).ok_or_else(|| {
                Error::Config(format!(
                    "{url}: an S3 URL needs a bucket: s3://bucket/prefix"
                ))
            })?;
            let mut builder =
                object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
            // object_store reads AWS_ENDPOINT; the AWS SDKs and CLI use AWS_ENDPOINT_URL.
            if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
                builder = builder.with_endpoint(endpoint);
            }
            Ok(Arc::new(builder.build()?))
        }
        "file" => Ok(Arc::new(object_store::local::LocalFileSystem::new())),
        other => Err(Error::Config(format!(
            "{url}: unsupported scheme `{other}`; use a local path or s3://bucket/prefix"
        ))),
    }
}

/// DataFusion's store registry, plus: an `s3://bucket` URL nobody registered
/// gets a store built by [`object_store_for`] on first use. A Ballista
/// scheduler or executor plans and reads tables whose URLs arrive inside
/// query plans, so it cannot register their buckets in advance; the AWS
/// variables of its own process supply the credentials.
#[derive(Debug)]
pub struct StoreRegistry {
    inner: DefaultObjectStoreRegistry,
}

impl Default for StoreRegistry {
    /// Local files through [`super::in_place::InPlaceLocal`] (on Unix).
    fn default() -> Self {
        let inner = DefaultObjectStoreRegistry::new();
        #[cfg(unix)]
        if let Ok(url) = Url::parse("file://") {
            inner.register_store(&url, Arc::new(super::in_place::InPlaceLocal::default()));
        }
        Self { inner }
    }
}

impl ObjectStoreRegistry for StoreRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.inner.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> datafusion::common::Result<Arc<dyn ObjectStore>> {
        self.inner.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> datafusion::common::Result<Arc<dyn ObjectStore>> {
        match self.inner.get_store(url) {
            Ok(store) => Ok(store),
            Err(missing) if matches!(url.scheme(), "s3" | "s3a") => {
                let store = object_store_for(url).map_err(|e| {
                    datafusion::common::DataFusionError::Configuration(format!(
                        "{missing}; building one from the AWS_* variables failed: {e}"
                    ))
                })?;
                self.inner.register_store(url, Arc::clone(&store));
                Ok(store)
            }
            Err(missing) => Err(missing),
        }
    }
}

/// A location given on the command line or in the config: a URL when it has
/// a scheme (`s3://…`), a local path otherwise.
pub fn parse_location(location: &Path) -> Result<Option<Url>> {
    let text = location.to_string_lossy();
    if !text.contains("://") {
        return Ok(None);
    }
    let url =
        Url::parse(&text).map_err(|e| Error::Config(format!("{text}: not a valid URL: {e}")))?;
    if url.scheme() == "file" {
        return Ok(None);
    }
    Ok(Some(url))
}

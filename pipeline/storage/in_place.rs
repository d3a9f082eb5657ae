//! The local filesystem as runs read it: `LocalFileSystem` for everything,
//! except that the byte ranges a Parquet scan asks for are read in place,
//! on an open handle, on the calling thread. `LocalFileSystem` hands every
//! read to tokio's blocking pool and back, which costs more than reading a
//! column chunk from the page cache, and a scan of a day-partitioned table
//! makes one such read per file and row group (docs/performance.md).

use std::fmt;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// `LocalFileSystem` whose ranged reads run in place.
#[derive(Debug, Default)]
pub struct InPlaceLocal {
    inner: LocalFileSystem,
}

impl fmt::Display for InPlaceLocal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InPlaceLocal({})", self.inner)
    }
}

fn store_error(location: &Path, e: std::io::Error) -> object_store::Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        object_store::Error::NotFound {
            path: location.to_string(),
            source: Box::new(e),
        }
    } else {
        // The error of a read names no file: say which.
        object_store::Error::Generic {
            store: "InPlaceLocal",
            source: format!("{location}: {e}").into(),
        }
    }
}

/// `range` of `file`, all of it: a file shorter than the range is an error.
fn read_range(file: &File, location: &Path, range: &Range<u64>) -> Result<Bytes> {
    let mut buf = vec![0u8; (range.end.saturating_sub(range.start)) as usize];
    file.read_exact_at(&mut buf, range.start)
        .map_err(|e| store_error(location, e))?;
    Ok(Bytes::from(buf))
}

#[async_trait]
impl ObjectStore for InPlaceLocal {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let path = self.inner.path_to_filesystem(location)?;
        let file = File::open(&path).map_err(|e| store_error(location, e))?;
        ranges
            .iter()
            .map(|r| read_range(&file, location, r))
            .collect()
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

    #[tokio::test]
    async fn reads_the_ranges_local_file_system_reads_and_fails_the_same_way() {
        let dir = std::env::temp_dir().join(format!("medallion-in-place-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("part.bin");
        let body: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&file, &body).unwrap();
        let location = Path::from_absolute_path(&file).unwrap();
        let ranges = [0..10, 9_990..10_000, 100..4_196, 5..5];

        let in_place = InPlaceLocal::default();
        let local = LocalFileSystem::new();
        let got = in_place.get_ranges(&location, &ranges).await.unwrap();
        assert_eq!(got, local.get_ranges(&location, &ranges).await.unwrap());
        assert_eq!(got[2].as_ref(), &body[100..4_196]);

        // Past the end of the file: an error naming the file, never a short read.
        let past_end = in_place
            .get_ranges(&location, std::slice::from_ref(&(9_000..10_001)))
            .await;
        assert!(
            matches!(&past_end, Err(e) if e.to_string().contains("part.bin")),
            "{past_end:?}"
        );
        let missing = Path::from_absolute_path(dir.join("gone.bin")).unwrap();
        assert!(matches!(
            in_place
                .get_ranges(&missing, std::slice::from_ref(&(0..1)))
                .await,
            Err(object_store::Error::NotFound { .. })
        ));
        // Everything else is LocalFileSystem's.
        assert_eq!(in_place.head(&location).await.unwrap().size, 10_000);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_store_registry_reads_local_files_in_place() {
        use datafusion::execution::object_store::ObjectStoreRegistry;
        let registry = crate::storage::StoreRegistry::default();
        let store = registry
            .get_store(&url::Url::parse("file:///tmp/t").unwrap())
            .unwrap();
        assert!(store.to_string().starts_with("InPlaceLocal"), "{store}");
    }
}

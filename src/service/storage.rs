//! Attachment blobs, through the `object_store` crate.
//!
//! **Where.** By default a local directory, `$TICKETD_DATA_DIR/attachments`. When
//! `TICKETD_S3_BUCKET` is set, an S3-compatible bucket instead (this needs a build with
//! `--features s3`; the default build leaves it out because it brings in reqwest 0.13,
//! rustls and aws-lc-rs). `app::config` reads the bucket's settings ([`S3Settings`]):
//! `TICKETD_S3_BUCKET`, `TICKETD_S3_ENDPOINT` (MinIO, Ceph, R2...), `TICKETD_S3_REGION`,
//! `TICKETD_S3_ALLOW_HTTP=true` for a plain-HTTP endpoint, `AWS_ACCESS_KEY_ID` and
//! `AWS_SECRET_ACCESS_KEY`; this module reads no environment.
//!
//! **Layout.** `tmp/<uuid>`: an upload in progress. `blobs/<2 hex>/<sha256>`: content,
//! stored once however often it is uploaded.
//!
//! **Uploads** stream to a temporary object while they are hashed and counted
//! ([`Upload`]); nothing is buffered beyond one part (1 MiB locally, 5 MiB on S3, the
//! S3 minimum). A finished upload ([`Staged`]) is moved to its content address by
//! [`Storage::place`]. Every temporary object is removed when it is dropped unplaced, so
//! an upload that fails, is refused or is cut off leaves nothing behind.
//!
//! **Collection.** A blob is deleted only when no live attachment references it. The
//! `attachments` projection counts live references per blob (`rm_attachment_refs`); an
//! upload pins its blob (`attachment_pins`) *before* placing it, and the pin lasts until
//! the projection has counted the new reference (or the command failed). Placing and
//! collecting a blob both hold a transaction-level advisory lock on its hash, and the
//! collector re-checks "no references, no pins" under that lock, so a blob is never
//! deleted while an attachment or an upload in flight uses it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

/// The first key of the advisory locks taken on blob hashes.
const BLOB_LOCK_CLASS: i32 = 0x7469_636b; // "tick"

/// Temporary objects older than this are crash leftovers.
const TMP_MAX_AGE: Duration = Duration::from_secs(3600);

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("the upload is larger than {0} bytes")]
    TooLarge(u64),
    #[error("{0}")]
    Config(String),
}

/// The attachment blob store.
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// Bytes buffered per part of a streamed upload.
    part_size: usize,
    /// The local root, when the store is a directory (for the crash-leftover sweep).
    local_root: Option<std::path::PathBuf>,
    description: String,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

/// Where the blobs live.
#[derive(Debug, Clone)]
pub enum BlobStore {
    /// A local directory.
    Local(std::path::PathBuf),
    /// An S3-compatible bucket.
    S3(S3Settings),
}

/// An S3-compatible bucket and how to reach it.
#[derive(Debug, Clone)]
pub struct S3Settings {
    pub bucket: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub allow_http: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl Storage {
    /// The configured store (see the module docs).
    pub fn open_store(config: &BlobStore) -> Result<Self, StorageError> {
        match config {
            BlobStore::Local(dir) => Self::local(dir),
            BlobStore::S3(settings) => Self::s3(settings),
        }
    }

    /// A store in a local directory (created if missing).
    pub fn local(dir: &std::path::Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir.join("tmp"))
            .and_then(|_| std::fs::create_dir_all(dir.join("blobs")))
            .map_err(|e| StorageError::Config(format!("cannot create {}: {e}", dir.display())))?;
        let store = LocalFileSystem::new_with_prefix(dir)?.with_automatic_cleanup(false);
        Ok(Storage {
            store: Arc::new(store),
            part_size: 1024 * 1024,
            local_root: std::fs::canonicalize(dir).ok(),
            description: format!("local directory {}", dir.display()),
        })
    }

    #[cfg(feature = "s3")]
    fn s3(s: &S3Settings) -> Result<Self, StorageError> {
        let bucket = &s.bucket;
        let mut builder = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_allow_http(s.allow_http);
        if let Some(endpoint) = &s.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &s.region {
            builder = builder.with_region(region);
        }
        if let Some(key) = &s.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &s.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        Ok(Storage {
            store: Arc::new(builder.build()?),
            // S3 parts other than the last must be at least 5 MiB.
            part_size: 5 * 1024 * 1024,
            local_root: None,
            description: format!("S3 bucket {bucket}"),
        })
    }

    #[cfg(not(feature = "s3"))]
    fn s3(_: &S3Settings) -> Result<Self, StorageError> {
        Err(StorageError::Config(
            "TICKETD_S3_BUCKET is set but this ticketd was built without S3 support \
             (rebuild with `cargo build --release --features s3`)"
                .into(),
        ))
    }

    /// The object key of a blob.
    pub fn blob_path(sha256: &str) -> ObjectPath {
        let prefix = sha256.get(..2).unwrap_or("00");
        ObjectPath::from(format!("blobs/{prefix}/{sha256}"))
    }

    /// Starts streaming an upload of at most `limit` bytes to a temporary object.
    pub async fn begin_upload(&self, limit: u64) -> Result<Upload, StorageError> {
        let path = ObjectPath::from(format!("tmp/{}", Uuid::new_v4()));
        let upload = self.store.put_multipart(&path).await?;
        Ok(Upload {
            store: self.store.clone(),
            path,
            writer: Some(WriteMultipart::new_with_chunk_size(upload, self.part_size)),
            hasher: Sha256::new(),
            size: 0,
            limit,
        })
    }

    /// Moves a staged upload to its content address (or drops it if that blob exists),
    /// under the blob's lock. The caller must have pinned the hash first.
    pub async fn place(&self, pool: &PgPool, mut staged: Staged) -> Result<(), StorageError> {
        sqlx::query(
            "insert into attachment_blobs (sha256, size) values ($1, $2)
             on conflict (sha256) do update set collected_at = null,
                 stored_at = case when attachment_blobs.collected_at is null
                                  then attachment_blobs.stored_at else now() end",
        )
        .bind(&staged.sha256)
        .bind(staged.size as i64)
        .execute(pool)
        .await?;
        let mut tx = pool.begin().await?;
        lock_blob(&mut tx, &staged.sha256).await?;
        let target = Self::blob_path(&staged.sha256);
        match self.store.head(&target).await {
            Ok(_) => {
                self.store.delete(&staged.path).await?;
            }
            Err(object_store::Error::NotFound { .. }) => {
                self.store.rename(&staged.path, &target).await?;
            }
            Err(e) => return Err(e.into()),
        }
        staged.placed = true;
        tx.commit().await?;
        Ok(())
    }

    /// The bytes of a blob, as a stream.
    pub async fn open(
        &self,
        sha256: &str,
    ) -> Result<BoxStream<'static, Result<Bytes, std::io::Error>>, StorageError> {
        let result = self.store.get(&Self::blob_path(sha256)).await?;
        #[cfg(not(target_arch = "wasm32"))]
        if let object_store::GetResultPayload::File(file, _) = result.payload {
            // Larger reads than the crate's 8 KiB chunks: fewer blocking hops per MiB.
            return Ok(read_file(tokio::fs::File::from_std(file)));
        }
        Ok(result
            .into_stream()
            .map(|r| r.map_err(std::io::Error::other))
            .boxed())
    }

    /// True if the blob is in the store.
    pub async fn exists(&self, sha256: &str) -> Result<bool, StorageError> {
        match self.store.head(&Self::blob_path(sha256)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes unreferenced, unpinned blobs (only `sha256` if given) and prunes pins whose
    /// reference the projection has counted. Returns how many blobs were deleted.
    pub async fn collect(&self, pool: &PgPool, only: Option<&str>) -> Result<u64, StorageError> {
        sqlx::query(
            "delete from attachment_pins p
              where exists (select 1 from rm_attachments a where a.id = p.attachment_id)
                 or p.created_at < now() - interval '1 day'",
        )
        .execute(pool)
        .await?;
        const UNUSED: &str = "b.collected_at is null
            and coalesce((select refs from rm_attachment_refs r where r.sha256 = b.sha256), 0) <= 0
            and not exists (select 1 from attachment_pins p where p.sha256 = b.sha256)";
        let candidates: Vec<(String,)> = sqlx::query_as(&format!(
            "select b.sha256 from attachment_blobs b
              where ($1::text is null or b.sha256 = $1) and {UNUSED}
              limit 1000"
        ))
        .bind(only)
        .fetch_all(pool)
        .await?;
        let mut deleted = 0;
        for (sha,) in candidates {
            let mut tx = pool.begin().await?;
            lock_blob(&mut tx, &sha).await?;
            let (still_unused,): (bool,) = sqlx::query_as(&format!(
                "select exists (select 1 from attachment_blobs b where b.sha256 = $1 and {UNUSED})"
            ))
            .bind(&sha)
            .fetch_one(&mut *tx)
            .await?;
            if still_unused {
                match self.store.delete(&Self::blob_path(&sha)).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                sqlx::query("update attachment_blobs set collected_at = now() where sha256 = $1")
                    .bind(&sha)
                    .execute(&mut *tx)
                    .await?;
                deleted += 1;
            }
            tx.commit().await?;
        }
        Ok(deleted)
    }

    /// Deletes the blobs `shas` now, whatever still refers to them (an erased person's files):
    /// their rows are marked collected. Returns how many were deleted.
    pub async fn delete_now(&self, pool: &PgPool, shas: &[String]) -> Result<u64, StorageError> {
        let mut deleted = 0;
        for sha in shas {
            let mut tx = pool.begin().await?;
            lock_blob(&mut tx, sha).await?;
            match self.store.delete(&Self::blob_path(sha)).await {
                Ok(()) => deleted += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            sqlx::query(
                "update attachment_blobs set collected_at = now()
                  where sha256 = $1 and collected_at is null",
            )
            .bind(sha)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        Ok(deleted)
    }

    /// Removes temporary objects left by a crash (older than an hour).
    pub async fn sweep_temporary(&self) -> Result<u64, StorageError> {
        let cutoff = chrono::Utc::now()
            - chrono::Duration::from_std(TMP_MAX_AGE).unwrap_or(chrono::Duration::hours(1));
        let mut removed = 0;
        let mut listing = self.store.list(Some(&ObjectPath::from("tmp")));
        let mut old = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            if meta.last_modified < cutoff {
                old.push(meta.location);
            }
        }
        for path in old {
            if self.store.delete(&path).await.is_ok() {
                removed += 1;
            }
        }
        // Local staging files (`tmp/<id>#<n>`) are invisible to `list`.
        if let Some(root) = &self.local_root {
            if let Ok(entries) = std::fs::read_dir(root.join("tmp")) {
                for entry in entries.flatten() {
                    let old = entry
                        .metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|m| m.elapsed().ok())
                        .is_some_and(|age| age > TMP_MAX_AGE);
                    if old && std::fs::remove_file(entry.path()).is_ok() {
                        removed += 1;
                    }
                }
            }
        }
        Ok(removed)
    }

    /// Runs `collect` and `sweep_temporary` every `every`, forever (spawned by `serve`).
    pub async fn run_collector(self: Arc<Self>, pool: PgPool, every: Duration) {
        loop {
            if let Err(e) = self.collect(&pool, None).await {
                tracing::warn!(error = %e, "attachment collection failed");
            }
            if let Err(e) = self.sweep_temporary().await {
                tracing::warn!(error = %e, "temporary upload sweep failed");
            }
            tokio::time::sleep(every).await;
        }
    }
}

async fn lock_blob(conn: &mut sqlx::PgConnection, sha256: &str) -> Result<(), sqlx::Error> {
    sqlx::query("select pg_advisory_xact_lock($1, hashtext($2))")
        .bind(BLOB_LOCK_CLASS)
        .bind(sha256)
        .execute(conn)
        .await?;
    Ok(())
}

fn read_file(file: tokio::fs::File) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    use tokio::io::AsyncReadExt;
    const BUF: usize = 256 * 1024;
    futures::stream::try_unfold(file, |mut file| async move {
        let mut buf = bytes::BytesMut::with_capacity(BUF);
        while buf.len() < BUF {
            if file.read_buf(&mut buf).await? == 0 {
                break;
            }
        }
        if buf.is_empty() {
            Ok(None)
        } else {
            Ok(Some((buf.freeze(), file)))
        }
    })
    .boxed()
}

/// An upload streaming to a temporary object, hashed and counted as it goes.
/// Dropped before [`Upload::finish`], it aborts and removes the temporary object.
pub struct Upload {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    writer: Option<WriteMultipart>,
    hasher: Sha256,
    size: u64,
    limit: u64,
}

impl Upload {
    /// Appends a chunk. Past the limit it fails with `TooLarge` (drop or `abort` then).
    pub async fn write(&mut self, chunk: Bytes) -> Result<(), StorageError> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            return Err(StorageError::TooLarge(self.limit));
        }
        self.hasher.update(&chunk);
        let Some(writer) = self.writer.as_mut() else {
            return Err(StorageError::Config("upload already finished".into()));
        };
        // At most two parts in flight: memory stays bounded whatever the file size.
        writer.wait_for_capacity(2).await?;
        writer.put(chunk);
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Completes the temporary object.
    pub async fn finish(mut self) -> Result<Staged, StorageError> {
        let Some(writer) = self.writer.take() else {
            return Err(StorageError::Config("upload already finished".into()));
        };
        let hasher = std::mem::take(&mut self.hasher);
        let staged = Staged {
            store: self.store.clone(),
            path: self.path.clone(),
            sha256: hex::encode(hasher.finalize()),
            size: self.size,
            placed: false,
        };
        // From here on `staged` owns the cleanup of the object, even if `finish` fails.
        writer.finish().await?;
        Ok(staged)
    }

    /// Aborts the upload and removes what was written.
    pub async fn abort(mut self) {
        if let Some(writer) = self.writer.take() {
            if let Err(e) = writer.abort().await {
                tracing::debug!(error = %e, "aborting an upload");
            }
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = writer.abort().await;
                });
            }
        }
    }
}

/// A complete temporary object with its hash and size, removed if dropped unplaced.
pub struct Staged {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    /// Lowercase hex sha256 of the content.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
    placed: bool,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.placed {
            return;
        }
        let store = self.store.clone();
        let path = self.path.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                match store.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => tracing::warn!(error = %e, %path, "cannot remove a temporary upload"),
                }
            });
        }
    }
}

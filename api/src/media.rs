//! Media of listings and realtor profiles (issue #12): images (JPEG, PNG, WebP) and MP4 video,
//! kept through `object_store`: a local folder by default, S3-compatible storage with
//! `--media-url s3://bucket` (credentials and endpoint from the `AWS_*` environment).
//!
//! An upload is streamed to a temporary file while its size is counted and its first bytes
//! are checked (the type comes from the content, never from the name); past the size limit the
//! upload stops at once with nothing kept. Only then is the file copied to the store in parts,
//! so memory holds one part at a time. Images also get a JPEG thumbnail.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt as _;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _, WriteMultipart};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::error::{ApiError, Code};

/// Largest image, bytes.
pub const IMAGE_LIMIT: u64 = 10 * 1024 * 1024;
/// Largest video, bytes.
pub const VIDEO_LIMIT: u64 = 200 * 1024 * 1024;
/// Longest side of a thumbnail, pixels.
const THUMBNAIL_PX: u32 = 320;
/// Bytes read from the temporary file per part written to the store.
const PART: usize = 5 * 1024 * 1024;

/// What an upload is, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// JPEG, PNG or WebP.
    Image,
    /// MP4.
    Video,
}

impl Kind {
    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Video => "video",
        }
    }
}

/// The kind and content type of a file starting with `head` (at least 12 bytes are needed).
#[must_use]
pub fn sniff(head: &[u8]) -> Option<(Kind, &'static str)> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some((Kind::Image, "image/jpeg"))
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some((Kind::Image, "image/png"))
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some((Kind::Image, "image/webp"))
    } else if head.len() >= 12 && &head[4..8] == b"ftyp" {
        Some((Kind::Video, "video/mp4"))
    } else {
        None
    }
}

/// A stored upload.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Key of the bytes in the store.
    pub key: String,
    /// Key of the thumbnail (images).
    pub thumbnail_key: Option<String>,
    /// What it is.
    pub kind: Kind,
    /// Its content type.
    pub content_type: &'static str,
    /// Size, bytes.
    pub size: u64,
    /// SHA-256 of the bytes, hex: the ETag.
    pub sha256: String,
}

/// The media store.
#[derive(Clone)]
pub struct MediaStore {
    store: Arc<dyn ObjectStore>,
    /// Where uploads wait while they are checked.
    spool: PathBuf,
    /// Where the store is, for messages.
    pub location: String,
}

impl std::fmt::Debug for MediaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl MediaStore {
    /// The store at `url`: `s3://bucket[/prefix]` (credentials, region and endpoint from the
    /// `AWS_*` environment), `file:///path`, or a plain folder path; uploads wait in `spool`.
    ///
    /// # Errors
    /// The URL or the folder is unusable.
    pub fn open(url: &str, spool: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(spool)?;
        let store: Arc<dyn ObjectStore> = if url.starts_with("s3://") {
            // Bounded retries and connects: an unreachable store fails `serve` in seconds,
            // not after the client's default three minutes of retries.
            let retry = object_store::RetryConfig {
                max_retries: 2,
                retry_timeout: std::time::Duration::from_secs(10),
                ..object_store::RetryConfig::default()
            };
            let client = object_store::ClientOptions::new()
                .with_connect_timeout(std::time::Duration::from_secs(5));
            let mut builder = object_store::aws::AmazonS3Builder::from_env()
                .with_url(url)
                .with_retry(retry)
                .with_client_options(client);
            let endpoint = std::env::var("AWS_ENDPOINT_URL")
                .or_else(|_| std::env::var("AWS_ENDPOINT"))
                .ok();
            if let Some(endpoint) = endpoint {
                builder = builder
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_endpoint(endpoint);
            }
            Arc::new(builder.build()?)
        } else {
            let dir = url.strip_prefix("file://").unwrap_or(url);
            std::fs::create_dir_all(dir)?;
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir)?)
        };
        Ok(Self {
            store,
            spool: spool.to_path_buf(),
            location: url.to_owned(),
        })
    }

    /// Whether the store answers (a listing of one key).
    pub async fn reachable(&self) -> bool {
        let mut listing = self.store.list(Some(&ObjectPath::from("media")));
        !matches!(listing.next().await, Some(Err(_)))
    }

    /// Takes one upload: streams `body` to the spool (stopping past the limit), checks its
    /// type, copies it to the store under `media/{id}`, makes a thumbnail of an image.
    ///
    /// # Errors
    /// 413 past the size limit, 422 for a type not accepted (or a broken image), 400 when
    /// the body stream fails, 503 when the store fails. Nothing is kept on error.
    pub async fn store<S, E>(
        &self,
        id: uuid::Uuid,
        mut body: S,
        accept_video: bool,
    ) -> Result<Stored, ApiError>
    where
        S: futures_util::Stream<Item = Result<actix_web::web::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let spooled =
            tempfile::NamedTempFile::new_in(&self.spool).map_err(|e| ApiError::internal(&e))?;
        let mut file =
            tokio::fs::File::from_std(spooled.reopen().map_err(|e| ApiError::internal(&e))?);
        let mut head: Vec<u8> = Vec::with_capacity(16);
        let mut kind = None;
        let mut size = 0u64;
        let mut hash = Sha256::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::new(Code::BadRequest, format!("upload failed: {e}")))?;
            if kind.is_none() {
                head.extend_from_slice(&chunk[..chunk.len().min(16 - head.len().min(16))]);
                if head.len() >= 12 {
                    kind = Some(self::accepted(&head, accept_video)?);
                }
            }
            size += chunk.len() as u64;
            let limit = match kind {
                Some((Kind::Image, _)) => IMAGE_LIMIT,
                Some((Kind::Video, _)) => VIDEO_LIMIT,
                None if accept_video => VIDEO_LIMIT,
                None => IMAGE_LIMIT,
            };
            if size > limit {
                return Err(too_large(limit));
            }
            hash.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| ApiError::internal(&e))?;
        }
        let (kind, content_type) = match kind {
            Some(k) => k,
            None => accepted(&head, accept_video)?,
        };
        file.flush().await.map_err(|e| ApiError::internal(&e))?;
        drop(file);
        let key = format!("media/{id}");
        let thumbnail_key = match kind {
            Kind::Image => {
                let thumbnail = thumbnail(spooled.path()).await?;
                let thumb_key = format!("media/{id}.thumb.jpg");
                self.store
                    .put(&ObjectPath::from(thumb_key.as_str()), thumbnail.into())
                    .await
                    .map_err(unavailable)?;
                Some(thumb_key)
            }
            Kind::Video => None,
        };
        if let Err(err) = self.copy_in(spooled.path(), &key).await {
            if let Some(t) = &thumbnail_key {
                let _ = self.store.delete(&ObjectPath::from(t.as_str())).await;
            }
            return Err(err);
        }
        Ok(Stored {
            key,
            thumbnail_key,
            kind,
            content_type,
            size,
            sha256: format!("{:x}", hash.finalize()),
        })
    }

    /// Copies the spooled file to `key` in parts.
    async fn copy_in(&self, spooled: &Path, key: &str) -> Result<(), ApiError> {
        let upload = self
            .store
            .put_multipart(&ObjectPath::from(key))
            .await
            .map_err(unavailable)?;
        let mut writer = WriteMultipart::new(upload);
        let mut file = tokio::fs::File::open(spooled)
            .await
            .map_err(|e| ApiError::internal(&e))?;
        let mut buffer = vec![0u8; PART];
        loop {
            let n = file
                .read(&mut buffer)
                .await
                .map_err(|e| ApiError::internal(&e))?;
            if n == 0 {
                break;
            }
            writer.wait_for_capacity(2).await.map_err(unavailable)?;
            writer.write(&buffer[..n]);
        }
        writer.finish().await.map_err(unavailable)?;
        Ok(())
    }

    /// The bytes at `key`, as a stream.
    ///
    /// # Errors
    /// 404 when absent, 503 when the store fails.
    pub async fn read(
        &self,
        key: &str,
    ) -> Result<
        futures_util::stream::BoxStream<
            'static,
            Result<actix_web::web::Bytes, object_store::Error>,
        >,
        ApiError,
    > {
        match self.store.get(&ObjectPath::from(key)).await {
            Ok(found) => Ok(found.into_stream()),
            Err(object_store::Error::NotFound { .. }) => Err(ApiError::not_found("media")),
            Err(err) => Err(unavailable(err)),
        }
    }

    /// Deletes `key` (absent is fine).
    pub async fn delete(&self, key: &str) {
        match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(err) => tracing::warn!(%err, key, "media delete failed; the object stays"),
        }
    }
}

fn accepted(head: &[u8], accept_video: bool) -> Result<(Kind, &'static str), ApiError> {
    match sniff(head) {
        Some((Kind::Video, _)) if !accept_video => Err(ApiError::invalid(
            "a profile photo must be a JPEG, PNG or WebP image",
        )),
        Some(found) => Ok(found),
        None => Err(ApiError::invalid(
            "only JPEG, PNG and WebP images and MP4 videos are accepted (checked by content)",
        )),
    }
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        Code::PayloadTooLarge,
        format!("the upload is over {} MB", limit / (1024 * 1024)),
    )
}

fn unavailable(err: object_store::Error) -> ApiError {
    tracing::warn!(%err, "media store failed");
    ApiError::new(Code::Unavailable, "the media store is unavailable")
}

/// A JPEG of the image at `path`, at most [`THUMBNAIL_PX`] on its longer side.
async fn thumbnail(path: &Path) -> Result<Vec<u8>, ApiError> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let image = image::ImageReader::open(&path)
            .and_then(image::ImageReader::with_guessed_format)
            .map_err(|e| ApiError::internal(&e))?
            .decode()
            .map_err(|e| ApiError::invalid(format!("the image cannot be read: {e}")))?;
        let small = image.thumbnail(THUMBNAIL_PX, THUMBNAIL_PX).to_rgb8();
        let mut out = std::io::Cursor::new(Vec::new());
        small
            .write_to(&mut out, image::ImageFormat::Jpeg)
            .map_err(|e| ApiError::internal(&e))?;
        Ok(out.into_inner())
    })
    .await
    .map_err(|e| ApiError::internal(&e))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_content() {
        assert_eq!(
            sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0, 0, 0, 0, 0, 0, 0])
                .unwrap()
                .1,
            "image/jpeg"
        );
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\0").unwrap().1, "image/png");
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 ").unwrap().1, "image/webp");
        assert_eq!(
            sniff(b"\0\0\0\x18ftypmp42").unwrap(),
            (Kind::Video, "video/mp4")
        );
        assert_eq!(sniff(b"<html><body>pic.jpg"), None);
        assert_eq!(sniff(b"GIF89a......"), None);
    }
}

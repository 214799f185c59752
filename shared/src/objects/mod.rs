//! Object storage for media copies and transcripts: the port, and S3 (the functions' adapter;
//! `baton-local` adds a directory, `baton_local::fs_objects`).
//! Large files are written part by part so memory stays flat whatever the file size.

use async_trait::async_trait;
use bytes::Bytes;

pub mod s3;

pub use s3::S3Store;

/// Size of the parts a large object is written in (S3's minimum is 5 MiB).
pub const PART_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("object storage is unavailable: {message}")]
    Unavailable {
        message: String,
        #[source]
        source: Option<crate::store::BoxError>,
    },
    #[error("object storage refused the request: {message}")]
    Rejected {
        message: String,
        #[source]
        source: Option<crate::store::BoxError>,
    },
}

impl ObjectError {
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable {
            message: message.into(),
            source: None,
        }
    }

    pub fn rejected(message: impl Into<String>) -> Self {
        Self::Rejected {
            message: message.into(),
            source: None,
        }
    }

    /// Storage could not be reached, as `e` says.
    pub fn unavailable_from(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable {
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    }
}

impl crate::retry::Classify for ObjectError {
    fn class(&self) -> crate::retry::ErrorClass {
        match self {
            Self::Unavailable { .. } => crate::retry::ErrorClass::Retry,
            Self::Rejected { .. } => crate::retry::ErrorClass::Park,
        }
    }
}

/// What is kept with an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub content_type: String,
    /// The original file name, kept for downloads (`Content-Disposition`).
    pub filename: Option<String>,
    /// Extra metadata (`x-amz-meta-*` on S3).
    pub metadata: Vec<(String, String)>,
}

impl ObjectMeta {
    /// `attachment; filename*=UTF-8''…` (RFC 6266 / 8187), so any name survives.
    pub fn content_disposition(&self) -> Option<String> {
        self.filename.as_ref().map(|name| {
            let mut enc = String::new();
            for b in name.bytes() {
                if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                    enc.push(b as char);
                } else {
                    enc.push_str(&format!("%{b:02X}"));
                }
            }
            format!("attachment; filename*=UTF-8''{enc}")
        })
    }
}

/// Where media copies and transcripts go.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// The object's size, when it exists.
    async fn head(&self, key: &str) -> Result<Option<u64>, ObjectError>;
    async fn put(&self, key: &str, body: Bytes, meta: &ObjectMeta) -> Result<(), ObjectError>;
    /// Starts writing a large object, part by part.
    async fn start(
        &self,
        key: &str,
        meta: &ObjectMeta,
    ) -> Result<Box<dyn ObjectWriter>, ObjectError>;
    async fn get(&self, key: &str) -> Result<Option<Bytes>, ObjectError>;
    /// Reads an object as a stream of chunks, so a large file never sits in memory whole.
    async fn open(&self, key: &str) -> Result<Option<ObjectStream>, ObjectError>;
    /// How a person or a later stage refers to the object (`s3://bucket/key`, a file path).
    fn link(&self, key: &str) -> String;
    /// A URL a browser can fetch the object from for `expires` without other credentials (an S3
    /// presigned GET), shown `inline` or as a download; `None` when the store has no such URLs
    /// (a directory), and the caller serves the bytes itself.
    async fn presign_get(
        &self,
        _key: &str,
        _expires: std::time::Duration,
        _inline: bool,
    ) -> Result<Option<String>, ObjectError> {
        Ok(None)
    }
    /// Removes the object; true when it existed.
    async fn delete(&self, key: &str) -> Result<bool, ObjectError> {
        Err(ObjectError::rejected(format!(
            "this store cannot delete {key:?}"
        )))
    }
    /// The keys under `prefix`, in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, ObjectError> {
        Err(ObjectError::rejected(format!(
            "this store cannot list {prefix:?}"
        )))
    }
}

/// An object being read: its size and its bytes, chunk by chunk.
pub struct ObjectStream {
    pub len: u64,
    pub content_type: Option<String>,
    pub body: futures_util::stream::BoxStream<'static, Result<Bytes, ObjectError>>,
}

/// A large object being written. Nothing is visible under the key until `finish`.
#[async_trait]
pub trait ObjectWriter: Send {
    /// Appends a part; every part but the last must be [`PART_BYTES`] long.
    async fn part(&mut self, part: Bytes) -> Result<(), ObjectError>;
    /// Makes the object visible; returns its size.
    async fn finish(self: Box<Self>) -> Result<u64, ObjectError>;
    /// Drops what was written.
    async fn abort(self: Box<Self>);
}

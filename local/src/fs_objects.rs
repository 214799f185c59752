//! Objects as files under a directory (`baton-local`): written to a temporary name and renamed,
//! so a crash never leaves half a file under the real key.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use baton_shared::objects::{ObjectError, ObjectMeta, ObjectStore, ObjectStream, ObjectWriter};

#[derive(Debug, Clone)]
pub struct FsObjectStore {
    root: PathBuf,
}

fn io(e: std::io::Error) -> ObjectError {
    ObjectError::unavailable_from(e)
}

impl FsObjectStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf, ObjectError> {
        if key
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return Err(ObjectError::rejected(format!("unsafe object key {key:?}")));
        }
        Ok(self.root.join(key))
    }

    async fn temp(&self, key: &str) -> Result<(PathBuf, PathBuf, tokio::fs::File), ObjectError> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io)?;
        }
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(ObjectError::unavailable_from)?;
        let tmp = path.with_extension(format!("partial-{}", hex::encode(nonce)));
        let file = tokio::fs::File::create(&tmp).await.map_err(io)?;
        Ok((path, tmp, file))
    }
}

struct FileWriter {
    path: PathBuf,
    tmp: PathBuf,
    file: tokio::fs::File,
    written: u64,
}

#[async_trait]
impl ObjectWriter for FileWriter {
    async fn part(&mut self, part: Bytes) -> Result<(), ObjectError> {
        self.file.write_all(&part).await.map_err(io)?;
        self.written += part.len() as u64;
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<u64, ObjectError> {
        self.file.flush().await.map_err(io)?;
        self.file.sync_all().await.map_err(io)?;
        tokio::fs::rename(&self.tmp, &self.path).await.map_err(io)?;
        Ok(self.written)
    }

    async fn abort(self: Box<Self>) {
        let _ = tokio::fs::remove_file(&self.tmp).await;
    }
}

#[async_trait]
impl ObjectStore for FsObjectStore {
    async fn head(&self, key: &str) -> Result<Option<u64>, ObjectError> {
        match tokio::fs::metadata(self.path(key)?).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    async fn put(&self, key: &str, body: Bytes, meta: &ObjectMeta) -> Result<(), ObjectError> {
        let mut w = self.start(key, meta).await?;
        w.part(body).await?;
        w.finish().await.map(|_| ())
    }

    async fn start(
        &self,
        key: &str,
        _meta: &ObjectMeta,
    ) -> Result<Box<dyn ObjectWriter>, ObjectError> {
        let (path, tmp, file) = self.temp(key).await?;
        Ok(Box::new(FileWriter {
            path,
            tmp,
            file,
            written: 0,
        }))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, ObjectError> {
        match tokio::fs::read(self.path(key)?).await {
            Ok(b) => Ok(Some(Bytes::from(b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    async fn open(&self, key: &str) -> Result<Option<ObjectStream>, ObjectError> {
        use tokio::io::AsyncReadExt;
        let file = match tokio::fs::File::open(self.path(key)?).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        let len = file.metadata().await.map_err(io)?.len();
        let body = futures_util::stream::unfold(Some(file), |file| async move {
            let mut file = file?;
            let mut buf = vec![0u8; 64 * 1024];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), Some(file)))
                }
                Err(e) => Some((Err(io(e)), None)),
            }
        });
        Ok(Some(ObjectStream {
            len,
            content_type: None,
            body: Box::pin(body),
        }))
    }

    async fn delete(&self, key: &str) -> Result<bool, ObjectError> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {
                // Empty directories left behind go too, up to the root.
                let mut dir = path.parent();
                while let Some(d) = dir.filter(|d| *d != self.root) {
                    if tokio::fs::remove_dir(d).await.is_err() {
                        break;
                    }
                    dir = d.parent();
                }
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, ObjectError> {
        // Walk the directory the prefix names (or its parent), then keep the matching keys.
        let start = match prefix.rfind('/') {
            Some(i) => self.root.join(&prefix[..i]),
            None => self.root.clone(),
        };
        let mut keys = Vec::new();
        let mut dirs = vec![start];
        while let Some(dir) = dirs.pop() {
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(e)),
            };
            while let Some(entry) = entries.next_entry().await.map_err(io)? {
                let path = entry.path();
                if entry.file_type().await.map_err(io)?.is_dir() {
                    dirs.push(path);
                } else if let Ok(rel) = path.strip_prefix(&self.root) {
                    let key = rel
                        .to_string_lossy()
                        .replace(std::path::MAIN_SEPARATOR, "/");
                    if key.starts_with(prefix) && !key.contains(".partial-") {
                        keys.push(key);
                    }
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn link(&self, key: &str) -> String {
        let path = self.root.join(key);
        let abs = if path.is_absolute() {
            path
        } else {
            std::env::current_dir()
                .map(|d| d.join(&path))
                .unwrap_or(path)
        };
        format!("file://{}", Path::new(&abs).display())
    }
}

//! Objects in S3. Small objects are one `PutObject`; large ones a multipart upload whose parts go
//! up two at a time while the next is read, so a copy runs at download speed in constant memory.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use tokio::task::JoinSet;

use super::{ObjectError, ObjectMeta, ObjectStore, ObjectStream, ObjectWriter};

/// Parts uploading at once while the next part is read.
const PARTS_IN_FLIGHT: usize = 2;

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
}

fn sdk_error<E, R>(operation: &str, e: SdkError<E, R>) -> ObjectError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = e.code().unwrap_or("").to_owned();
    let message = match e.message() {
        Some(m) => format!("{operation}: {code} {m}"),
        None => format!(
            "{operation}: {}",
            aws_sdk_s3::error::DisplayErrorContext(&e)
        ),
    };
    let permanent = matches!(
        code.as_str(),
        "AccessDenied"
            | "NoSuchBucket"
            | "InvalidArgument"
            | "InvalidRequest"
            | "EntityTooLarge"
            | "InvalidBucketName"
    );
    if permanent {
        ObjectError::rejected(message)
    } else {
        ObjectError::unavailable(message)
    }
}

impl S3Store {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// A client from the shared AWS configuration; `force_path_style` for S3-compatible servers
    /// (set `BATON_S3_PATH_STYLE=1`), since `bucket.localhost` does not resolve.
    pub fn from_config(
        aws: &aws_config::SdkConfig,
        bucket: impl Into<String>,
        force_path_style: bool,
    ) -> Self {
        let conf = aws_sdk_s3::config::Builder::from(aws)
            .force_path_style(force_path_style)
            .build();
        Self::new(Client::from_conf(conf), bucket)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket if it is missing (tests and `baton-local`; on AWS the template does).
    pub async fn ensure_bucket(&self) -> Result<(), ObjectError> {
        if self
            .client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.code(),
                    Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error("CreateBucket", e)),
        }
    }
}

fn metadata(meta: &ObjectMeta) -> Option<HashMap<String, String>> {
    (!meta.metadata.is_empty()).then(|| meta.metadata.iter().cloned().collect())
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn head(&self, key: &str) -> Result<Option<u64>, ObjectError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.content_length().unwrap_or(0).max(0) as u64)),
            Err(SdkError::ServiceError(e)) if e.err().is_not_found() => Ok(None),
            Err(e) => Err(sdk_error("HeadObject", e)),
        }
    }

    async fn put(&self, key: &str, body: Bytes, meta: &ObjectMeta) -> Result<(), ObjectError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(&meta.content_type)
            .set_content_disposition(meta.content_disposition())
            .set_metadata(metadata(meta))
            .body(ByteStream::from(body))
            // Integrity comes from the CRC32 checksum the SDK adds and TLS; hashing the payload
            // for the signature as well would only cost time (AWS's HTTPS endpoints skip it too).
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| sdk_error("PutObject", e))?;
        Ok(())
    }

    async fn start(
        &self,
        key: &str,
        meta: &ObjectMeta,
    ) -> Result<Box<dyn ObjectWriter>, ObjectError> {
        Ok(Box::new(S3Writer {
            store: self.clone(),
            key: key.to_owned(),
            meta: meta.clone(),
            first: None,
            upload_id: None,
            next_part: 1,
            in_flight: JoinSet::new(),
            done: Vec::new(),
            written: 0,
        }))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, ObjectError> {
        use futures_util::TryStreamExt;
        let Some(object) = self.open(key).await? else {
            return Ok(None);
        };
        let mut bytes = Vec::with_capacity(object.len as usize);
        let mut body = object.body;
        while let Some(chunk) = body.try_next().await? {
            bytes.extend_from_slice(&chunk);
        }
        Ok(Some(Bytes::from(bytes)))
    }

    async fn open(&self, key: &str) -> Result<Option<ObjectStream>, ObjectError> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => {
                let len = out.content_length.unwrap_or_default().max(0) as u64;
                let content_type = out.content_type.clone();
                let body = futures_util::stream::unfold(out.body, |mut body| async move {
                    match body.next().await {
                        Some(Ok(chunk)) => Some((Ok(chunk), body)),
                        Some(Err(e)) => Some((
                            Err(ObjectError::unavailable(format!("GetObject body: {e}"))),
                            body,
                        )),
                        None => None,
                    }
                });
                Ok(Some(ObjectStream {
                    len,
                    content_type,
                    body: Box::pin(body),
                }))
            }
            Err(SdkError::ServiceError(e)) if e.err().is_no_such_key() => Ok(None),
            Err(e) => Err(sdk_error("GetObject", e)),
        }
    }

    fn link(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    async fn presign_get(
        &self,
        key: &str,
        expires: std::time::Duration,
        inline: bool,
    ) -> Result<Option<String>, ObjectError> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(expires)
            .map_err(|e| ObjectError::rejected(format!("presigning: {e}")))?;
        let mut get = self.client.get_object().bucket(&self.bucket).key(key);
        if inline {
            // Shown in the page (an image, a player) rather than saved.
            get = get.response_content_disposition("inline");
        }
        let request = get
            .presigned(config)
            .await
            .map_err(|e| sdk_error("presign GetObject", e))?;
        Ok(Some(request.uri().to_owned()))
    }

    async fn delete(&self, key: &str) -> Result<bool, ObjectError> {
        let existed = self.head(key).await?.is_some();
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteObject", e))?;
        Ok(existed)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, ObjectError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| sdk_error("ListObjectsV2", e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }
}

struct S3Writer {
    store: S3Store,
    key: String,
    meta: ObjectMeta,
    /// The first part, held back: an object of one part is a plain `PutObject`.
    first: Option<Bytes>,
    upload_id: Option<String>,
    next_part: i32,
    in_flight: JoinSet<Result<CompletedPart, ObjectError>>,
    done: Vec<CompletedPart>,
    written: u64,
}

impl S3Writer {
    async fn upload_id(&mut self) -> Result<String, ObjectError> {
        if let Some(id) = &self.upload_id {
            return Ok(id.clone());
        }
        let out = self
            .store
            .client
            .create_multipart_upload()
            .bucket(&self.store.bucket)
            .key(&self.key)
            .content_type(&self.meta.content_type)
            .set_content_disposition(self.meta.content_disposition())
            .set_metadata(metadata(&self.meta))
            .send()
            .await
            .map_err(|e| sdk_error("CreateMultipartUpload", e))?;
        let id = out.upload_id.ok_or_else(|| {
            ObjectError::unavailable("CreateMultipartUpload returned no upload id")
        })?;
        self.upload_id = Some(id.clone());
        Ok(id)
    }

    async fn send_part(&mut self, body: Bytes) -> Result<(), ObjectError> {
        let upload_id = self.upload_id().await?;
        while self.in_flight.len() >= PARTS_IN_FLIGHT {
            self.collect_one().await?;
        }
        let number = self.next_part;
        self.next_part += 1;
        let client = self.store.client.clone();
        let (bucket, key) = (self.store.bucket.clone(), self.key.clone());
        self.in_flight.spawn(async move {
            let out = client
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(body))
                .customize()
                .disable_payload_signing()
                .send()
                .await
                .map_err(|e| sdk_error("UploadPart", e))?;
            Ok(CompletedPart::builder()
                .set_e_tag(out.e_tag)
                .part_number(number)
                .build())
        });
        Ok(())
    }

    async fn collect_one(&mut self) -> Result<(), ObjectError> {
        if let Some(joined) = self.in_flight.join_next().await {
            let part = joined
                .map_err(|e| ObjectError::unavailable(format!("part upload stopped: {e}")))??;
            self.done.push(part);
        }
        Ok(())
    }
}

#[async_trait]
impl ObjectWriter for S3Writer {
    async fn part(&mut self, part: Bytes) -> Result<(), ObjectError> {
        self.written += part.len() as u64;
        if let Some(first) = self.first.take() {
            self.send_part(first).await?;
            return self.send_part(part).await;
        }
        if self.upload_id.is_none() {
            self.first = Some(part);
            return Ok(());
        }
        self.send_part(part).await
    }

    async fn finish(mut self: Box<Self>) -> Result<u64, ObjectError> {
        if self.upload_id.is_none() {
            let body = self.first.take().unwrap_or_default();
            self.store.put(&self.key, body, &self.meta).await?;
            return Ok(self.written);
        }
        while !self.in_flight.is_empty() {
            self.collect_one().await?;
        }
        let mut parts = std::mem::take(&mut self.done);
        parts.sort_by_key(CompletedPart::part_number);
        let upload_id = self.upload_id.clone().unwrap_or_default();
        self.store
            .client
            .complete_multipart_upload()
            .bucket(&self.store.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| sdk_error("CompleteMultipartUpload", e))?;
        Ok(self.written)
    }

    async fn abort(mut self: Box<Self>) {
        self.in_flight.abort_all();
        if let Some(id) = self.upload_id.take() {
            let _ = self
                .store
                .client
                .abort_multipart_upload()
                .bucket(&self.store.bucket)
                .key(&self.key)
                .upload_id(id)
                .send()
                .await;
        }
    }
}

//! Copying the customer's files from WhatsApp to object storage, as each message arrives: look the
//! media id up in the Graph API (`GET {base}/{version}/{media-id}`), download the returned URL with
//! the same token and a User-Agent, and stream it into storage under a key made from the
//! conversation and the message, so a retry writes the same object and never a second one.

use std::sync::Arc;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use baton_shared::domain::{ConversationKey, MediaRecord, MediaState};
use baton_shared::http::{ClientError, Timeouts};
use baton_shared::media_keys::{default_filename, object_key, url_component};
use baton_shared::objects::{ObjectError, ObjectMeta, ObjectStore, PART_BYTES};
use baton_shared::retry::Backoff;
use baton_shared::whatsapp::Media;
use baton_shared::whatsapp::graph::GraphConfig;

/// WhatsApp delivers inbound files of up to 100 MB; larger ones arrive as error 131052 instead.
pub const MAX_MEDIA_BYTES: u64 = 100 * 1024 * 1024;

/// One file to copy: the message that carried it and its media object. Serialized as an SQS
/// message body when the copy is queued.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MediaJob {
    pub conversation: ConversationKey,
    pub wamid: String,
    pub kind: String,
    pub media: Media,
    /// Attempts made by earlier calls (from the stored record).
    pub attempts_before: u32,
    /// Attempts this call may make; `None` for the configured number. The handoff makes one, so
    /// files that keep failing can't hold it up.
    pub attempts: Option<u32>,
    /// The message's order key, when the copy was queued as it arrived: a follow-up that went on
    /// without the file is found by it.
    #[serde(default)]
    pub order_key: Option<String>,
}

impl MediaJob {
    /// The file's name: the document's own, or one made from the kind and type.
    fn filename(&self) -> String {
        let voice = self.media.voice == Some(true);
        self.media
            .filename
            .clone()
            .filter(|f| !f.trim().is_empty())
            .unwrap_or_else(|| default_filename(&self.kind, self.media.mime_type.as_deref(), voice))
    }

    /// The record of this file before any outcome: `state`, with nothing copied.
    pub fn record(&self, state: MediaState, now_ms: i64) -> MediaRecord {
        MediaRecord {
            conversation: self.conversation.clone(),
            wamid: self.wamid.clone(),
            kind: self.kind.clone(),
            media_id: self.media.id.clone(),
            state,
            key: None,
            content_type: self.media.mime_type.clone(),
            filename: self.filename(),
            bytes: None,
            sha256_expected: self.media.sha256.clone(),
            sha256_matches: None,
            error: None,
            retryable: true,
            attempts: self.attempts_before,
            updated_at_ms: now_ms,
        }
    }
}

/// Where a copy job goes to run, apart from the record that asked for it (adapters in
/// [`crate::copies`]).
#[async_trait::async_trait]
pub trait CopyQueue: Send + Sync {
    async fn enqueue(&self, job: &MediaJob) -> Result<(), baton_shared::store::StoreError>;
}

/// Why one attempt failed, and whether another could succeed.
#[derive(Debug, Clone)]
struct Failure {
    reason: String,
    retryable: bool,
    /// The URL had expired or was refused: look the id up again before the next download.
    refresh_url: bool,
}

impl Failure {
    fn retry(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            retryable: true,
            refresh_url: false,
        }
    }

    fn permanent(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            retryable: false,
            refresh_url: false,
        }
    }
}

#[derive(Deserialize)]
struct MediaInfo {
    url: String,
    #[serde(default)]
    mime_type: Option<String>,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default, deserialize_with = "size_string_or_number")]
    file_size: Option<u64>,
}

fn size_string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        S(String),
        N(u64),
    }
    Ok(match Option::<N>::deserialize(d)? {
        Some(N::N(n)) => Some(n),
        Some(N::S(s)) => s.trim().parse().ok(),
        None => None,
    })
}

#[derive(Deserialize)]
struct GraphErrorBody {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    code: i64,
}

/// Graph error codes worth trying again: rate limits and temporary failures.
const RETRYABLE_CODES: &[i64] = &[1, 2, 4, 17, 32, 613, 80007, 130429, 131056, 131016];

/// Copies media files into an object store.
#[derive(Clone)]
pub struct MediaCopier {
    http: reqwest::Client,
    graph: GraphConfig,
    objects: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for MediaCopier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaCopier")
            .field("graph", &self.graph)
            .finish()
    }
}

impl MediaCopier {
    pub fn new(graph: GraphConfig, objects: Arc<dyn ObjectStore>) -> Result<Self, ClientError> {
        // One attempt is bounded as a whole by `attempt_timeout`, around the lookup and download.
        let timeouts = Timeouts {
            connect: graph.connect_timeout,
            call: None,
            read: Some(graph.read_timeout),
        };
        let http = baton_shared::http::client("the Graph API", timeouts)?;
        Ok(Self {
            http,
            graph,
            objects,
        })
    }

    pub fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.objects
    }

    /// Copies one file, trying up to `attempts` times; never fails: the record says what happened.
    pub async fn copy(&self, job: &MediaJob, now_ms: i64) -> MediaRecord {
        let mut record = job.record(MediaState::Failed, now_ms);
        let filename = record.filename.clone();
        let key = object_key(&job.conversation, &job.wamid, &filename);

        // A copy made by an earlier attempt whose record was never written.
        match self.objects.head(&key).await {
            Ok(Some(size)) => {
                record.state = MediaState::Copied;
                record.key = Some(key);
                record.bytes = Some(size);
                record.retryable = false;
                return record;
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "could not check for an earlier copy"),
        }

        if self.graph.token.is_none() {
            record.error = Some(
                "WHATSAPP_ACCESS_TOKEN is not configured, so WhatsApp media cannot be downloaded"
                    .into(),
            );
            return record;
        }
        if job.media.id.is_empty() && job.media.url.is_none() {
            record.error = Some("the message carries no media id".into());
            record.retryable = false;
            return record;
        }

        let mut url = job.media.url.clone();
        let attempts = job.attempts.unwrap_or(self.graph.attempts).max(1);
        let backoff = Backoff::new(self.graph.backoff, self.graph.backoff * 8, attempts);
        let mut last = Failure::retry("not attempted");
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff.delay(attempt - 1)).await;
            }
            record.attempts += 1;
            let attempt_result = tokio::time::timeout(
                self.graph.attempt_timeout,
                self.attempt(job, &key, &filename, url.clone(), &mut record),
            )
            .await
            .unwrap_or_else(|_| {
                Err(Failure::retry(format!(
                    "the download took longer than {} s",
                    self.graph.attempt_timeout.as_secs()
                )))
            });
            match attempt_result {
                Ok(()) => {
                    record.state = MediaState::Copied;
                    record.key = Some(key);
                    record.error = None;
                    record.retryable = false;
                    return record;
                }
                Err(f) => {
                    tracing::warn!(message_ref = %baton_shared::observe::message_ref(&job.wamid), attempt = record.attempts, reason = %f.reason, "media copy attempt failed");
                    if f.refresh_url {
                        url = None;
                    }
                    let stop = !f.retryable;
                    last = f;
                    if stop {
                        break;
                    }
                }
            }
        }
        record.error = Some(last.reason);
        record.retryable = last.retryable;
        record
    }

    /// A GET to the Graph API or its media CDN with the token; `what` names it in the failure.
    async fn get(&self, url: &str, what: &str) -> Result<reqwest::Response, Failure> {
        self.http
            .get(url)
            .header(reqwest::header::AUTHORIZATION, self.bearer())
            .send()
            .await
            .map_err(|e| Failure::retry(format!("{what} failed: {}", transport(&e))))
    }

    fn bearer(&self) -> String {
        format!(
            "Bearer {}",
            self.graph
                .token
                .as_ref()
                .map_or("", secrecy::ExposeSecret::expose_secret)
        )
    }

    async fn lookup(&self, job: &MediaJob) -> Result<MediaInfo, Failure> {
        let url = format!(
            "{}/{}/{}?phone_number_id={}",
            self.graph.base_url,
            self.graph.version,
            url_component(&job.media.id),
            url_component(&job.conversation.phone_number_id)
        );
        let resp = self.get(&url, "media lookup").await?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| {
            Failure::retry(format!(
                "media lookup answer was cut off: {}",
                transport(&e)
            ))
        })?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| {
                Failure::retry(format!("media lookup answer is not the expected JSON: {e}"))
            });
        }
        let graph = serde_json::from_slice::<GraphErrorBody>(&body)
            .ok()
            .map(|b| b.error);
        let what = match &graph {
            Some(g) => format!(
                "media lookup refused ({status}, Graph error {}: {})",
                g.code, g.message
            ),
            None => format!("media lookup refused ({status})"),
        };
        let code = graph.map_or(0, |g| g.code);
        let retryable = status.is_server_error()
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || RETRYABLE_CODES.contains(&code)
            || status == reqwest::StatusCode::UNAUTHORIZED
            || code == 190;
        // An id that does not exist (or expired after 7 days) will not come back.
        let retryable = retryable && !(status == reqwest::StatusCode::NOT_FOUND || code == 100);
        Err(Failure {
            reason: what,
            retryable,
            refresh_url: false,
        })
    }

    async fn attempt(
        &self,
        job: &MediaJob,
        key: &str,
        filename: &str,
        url: Option<String>,
        record: &mut MediaRecord,
    ) -> Result<(), Failure> {
        let (url, declared_size) = match url {
            Some(u) => (u, None),
            None => {
                let info = self.lookup(job).await?;
                if record.content_type.is_none() {
                    record.content_type = info.mime_type.clone();
                }
                if record.sha256_expected.is_none() {
                    record.sha256_expected = info.sha256.clone();
                }
                (info.url, info.file_size)
            }
        };
        if let Some(size) = declared_size
            && size > MAX_MEDIA_BYTES
        {
            return Err(Failure::permanent(format!(
                "the file is {size} bytes, over WhatsApp's {MAX_MEDIA_BYTES}-byte limit"
            )));
        }
        let resp = self.get(&url, "download").await?;
        let status = resp.status();
        if !status.is_success() {
            // Media URLs expire after five minutes: look the id up again and retry.
            let expired = matches!(status.as_u16(), 401 | 403 | 404 | 410);
            return Err(Failure {
                reason: format!("download refused ({status})"),
                retryable: expired || status.is_server_error() || status.as_u16() == 429,
                refresh_url: expired,
            });
        }
        if let Some(len) = resp.content_length()
            && len > MAX_MEDIA_BYTES
        {
            return Err(Failure::permanent(format!(
                "the file is {len} bytes, over WhatsApp's {MAX_MEDIA_BYTES}-byte limit"
            )));
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if record.content_type.is_none() {
            record.content_type = content_type;
        }
        let meta = ObjectMeta {
            content_type: record
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into()),
            filename: Some(
                job.media
                    .filename
                    .clone()
                    .unwrap_or_else(|| filename.to_owned()),
            ),
            metadata: vec![
                (
                    "wamid-sha256".into(),
                    hex::encode(&Sha256::digest(job.wamid.as_bytes())[..8]),
                ),
                ("kind".into(), job.kind.clone()),
            ],
        };
        let mut writer = self.objects.start(key, &meta).await.map_err(storage)?;
        // The checksum is computed on another thread while the download goes on.
        let (to_hasher, mut chunks) = tokio::sync::mpsc::channel::<Bytes>(32);
        let hasher = tokio::task::spawn_blocking(move || {
            let mut hasher = Sha256::new();
            while let Some(chunk) = chunks.blocking_recv() {
                hasher.update(&chunk);
            }
            hasher.finalize()
        });
        let mut total: u64 = 0;
        let mut buf = BytesMut::with_capacity(PART_BYTES);
        let mut stream = resp.bytes_stream();
        let outcome: Result<(), Failure> = async {
            while let Some(chunk) = stream.next().await {
                let chunk: Bytes = chunk.map_err(|e| {
                    Failure::retry(format!(
                        "download broke off after {total} bytes: {}",
                        transport(&e)
                    ))
                })?;
                total += chunk.len() as u64;
                if total > MAX_MEDIA_BYTES {
                    return Err(Failure::permanent(format!(
                        "the file is over WhatsApp's {MAX_MEDIA_BYTES}-byte limit"
                    )));
                }
                if to_hasher.send(chunk.clone()).await.is_err() {
                    return Err(Failure::retry("the checksum worker stopped"));
                }
                let mut rest = chunk;
                while !rest.is_empty() {
                    let take = (PART_BYTES - buf.len()).min(rest.len());
                    buf.extend_from_slice(&rest.split_to(take));
                    if buf.len() == PART_BYTES {
                        let part = std::mem::replace(&mut buf, BytesMut::with_capacity(PART_BYTES))
                            .freeze();
                        writer.part(part).await.map_err(storage)?;
                    }
                }
            }
            if let Some(size) = declared_size
                && size != total
            {
                return Err(Failure::retry(format!(
                    "received {total} bytes of a {size}-byte file"
                )));
            }
            if !buf.is_empty() || total == 0 {
                writer
                    .part(std::mem::take(&mut buf).freeze())
                    .await
                    .map_err(storage)?;
            }
            Ok(())
        }
        .await;
        drop(to_hasher);
        if let Err(f) = outcome {
            writer.abort().await;
            return Err(f);
        }
        let written = writer.finish().await.map_err(storage)?;
        let digest = hasher
            .await
            .map_err(|e| Failure::retry(format!("the checksum worker stopped: {e}")))?;
        record.bytes = Some(written);
        record.sha256_matches = record.sha256_expected.as_deref().map(|expected| {
            let expected = expected.trim();
            expected == base64::engine::general_purpose::STANDARD.encode(digest)
                || expected.eq_ignore_ascii_case(&hex::encode(digest))
        });
        if record.sha256_matches == Some(false) {
            tracing::warn!(message_ref = %baton_shared::observe::message_ref(&job.wamid), "the copied file's SHA-256 differs from the one WhatsApp reported; kept anyway");
        }
        Ok(())
    }
}

fn storage(e: ObjectError) -> Failure {
    match e {
        ObjectError::Unavailable { message: m, .. } => {
            Failure::retry(format!("storing the copy failed: {m}"))
        }
        ObjectError::Rejected { message: m, .. } => {
            Failure::permanent(format!("storage refused the copy: {m}"))
        }
    }
}

/// A transport error, without the URL (it carries a short-lived download token).
fn transport(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the body broke off"
    } else {
        "transport error"
    };
    let source = std::error::Error::source(e)
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    format!("{kind}{source}")
}

//! How a call reaches HubSpot: the [`Call`] a step makes, the [`Reply`] one attempt gets, and the
//! [`Transport`] port with its HTTP adapter. The outbox (`baton-local` without a token) is the
//! other adapter ([`crate::outbox`]). Limits and retries sit above, in [`crate::client`].

use std::sync::Arc;
use std::time::Duration;

use baton_shared::http::{CONNECT_TIMEOUT, ClientError, Timeouts};
use baton_shared::objects::ObjectStore;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::error::HubspotError;

/// Which bucket a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    General,
    Search,
}

/// What a failed attempt allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Reads, and writes HubSpot deduplicates (unique properties, `RETURN_EXISTING`): every
    /// transient failure is retried here.
    Safe,
    /// A create whose outcome is unknown after a timeout or 5xx: only a 429 (never processed)
    /// is retried here; the caller looks the object up before it creates it again.
    Create,
}

/// A file to upload, opened again for every attempt so nothing is buffered whole.
#[derive(Clone)]
pub struct FileUpload {
    pub objects: Arc<dyn ObjectStore>,
    pub key: String,
    pub file_name: String,
    pub content_type: String,
    pub folder_path: String,
    /// The `options` form field: a JSON string.
    pub options: String,
}

#[derive(Clone)]
pub enum Payload {
    Empty,
    Json(Value),
    File(FileUpload),
}

#[derive(Clone)]
pub struct Call {
    pub method: http::Method,
    /// Path and query, e.g. `/crm/objects/2026-09/tickets`.
    pub path: String,
    pub payload: Payload,
    pub bucket: Bucket,
    pub retry: Retry,
    /// The scope HubSpot requires for it, named when HubSpot answers 401 or 403.
    pub scope: &'static str,
    /// The step the call serves, for errors and the trail.
    pub step: &'static str,
}

impl Call {
    pub fn get(step: &'static str, path: impl Into<String>) -> Self {
        Self {
            method: http::Method::GET,
            path: path.into(),
            payload: Payload::Empty,
            bucket: Bucket::General,
            retry: Retry::Safe,
            scope: "",
            step,
        }
    }

    pub fn post(step: &'static str, path: impl Into<String>, body: Value) -> Self {
        Self {
            method: http::Method::POST,
            path: path.into(),
            payload: Payload::Json(body),
            bucket: Bucket::General,
            retry: Retry::Safe,
            scope: "",
            step,
        }
    }

    pub fn patch(step: &'static str, path: impl Into<String>, body: Value) -> Self {
        Self {
            method: http::Method::PATCH,
            ..Self::post(step, path, body)
        }
    }

    pub fn needs(mut self, scope: &'static str) -> Self {
        self.scope = scope;
        self
    }

    pub fn create(mut self) -> Self {
        self.retry = Retry::Create;
        self
    }

    pub fn search(mut self) -> Self {
        self.bucket = Bucket::Search;
        self
    }
}

/// What one attempt got back from the transport.
pub enum Reply {
    Answer {
        status: u16,
        retry_after: Option<Duration>,
        body: Value,
    },
    /// No answer: connection refused or reset, or the request timed out.
    Lost(String),
}

/// Sends one attempt of a call and hands back what came of it; no retries here.
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    async fn send(&self, call: &Call) -> Result<Reply, HubspotError>;

    /// Whether calls are written down instead of sent (nothing reaches HubSpot).
    fn is_outbox(&self) -> bool {
        false
    }
}

/// HubSpot over HTTPS with the Bearer token.
pub struct HttpTransport {
    client: reqwest::Client,
    base_url: String,
    token: SecretString,
    timeout: Duration,
}

impl HttpTransport {
    pub fn new(
        base_url: &str,
        token: SecretString,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        // Each request sets its own bound: uploads get longer the larger the file.
        let timeouts = Timeouts {
            connect: CONNECT_TIMEOUT,
            call: None,
            read: None,
        };
        let client = baton_shared::http::client("HubSpot", timeouts)?;
        Ok(Self {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            token,
            timeout,
        })
    }
}

#[async_trait::async_trait]
impl Transport for HttpTransport {
    async fn send(&self, call: &Call) -> Result<Reply, HubspotError> {
        let url = format!("{}{}", self.base_url, call.path);
        let mut req = self
            .client
            .request(call.method.clone(), url)
            .bearer_auth(self.token.expose_secret())
            .timeout(self.timeout);
        req = match &call.payload {
            Payload::Empty => req,
            Payload::Json(v) => req.json(v),
            Payload::File(f) => {
                let Some(object) = f.objects.open(&f.key).await.map_err(|e| {
                    HubspotError::Storage(format!("media bucket: cannot read {}: {e}", f.key))
                })?
                else {
                    return Err(HubspotError::Gone(format!(
                        "media bucket: the copy {} is gone",
                        f.key
                    )));
                };
                let len = object.len;
                let body = reqwest::Body::wrap_stream(object.body);
                let part = reqwest::multipart::Part::stream_with_length(body, len)
                    .file_name(f.file_name.clone())
                    .mime_str(&f.content_type)
                    .unwrap_or_else(|_| {
                        reqwest::multipart::Part::stream_with_length(
                            reqwest::Body::from(Vec::new()),
                            0,
                        )
                    });
                let form = reqwest::multipart::Form::new()
                    .text("fileName", f.file_name.clone())
                    .text("folderPath", f.folder_path.clone())
                    .text("options", f.options.clone())
                    .part("file", part);
                // Large files take longer than a call: a minute plus 1 s per MB.
                req.multipart(form)
                    .timeout(self.timeout + Duration::from_secs(60 + len / 1_000_000))
            }
        };
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(|s| Duration::from_secs_f64(s.min(3600.0)));
                match resp.bytes().await {
                    Ok(bytes) => Ok(Reply::Answer {
                        status,
                        retry_after,
                        body: serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                            Value::String(String::from_utf8_lossy(&bytes).into_owned())
                        }),
                    }),
                    Err(e) => Ok(Reply::Lost(format!("reading the answer: {e}"))),
                }
            }
            Err(e) if e.is_timeout() => Ok(Reply::Lost("timed out".into())),
            Err(e) => Ok(Reply::Lost(e.to_string())),
        }
    }
}

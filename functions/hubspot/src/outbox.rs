//! `baton-local` without a HubSpot token: every request the function would send is written to a
//! directory (`BATON_DATA_DIR/hubspot-outbox/`) as JSON, numbered in order, and answered the way
//! an empty portal would (nothing found, everything created), so the whole flow runs.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::error::HubspotError;
use crate::transport::{Call, Payload, Reply, Transport};

pub struct OutboxTransport {
    pub dir: PathBuf,
    base_url: String,
    next: AtomicU64,
}

impl OutboxTransport {
    pub fn open(dir: PathBuf, base_url: &str) -> Result<Self, String> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let existing = std::fs::read_dir(&dir)
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .count() as u64;
        Ok(Self {
            dir,
            base_url: base_url.trim_end_matches('/').to_owned(),
            next: AtomicU64::new(existing + 1),
        })
    }

    async fn record(&self, call: &Call) -> Result<Reply, HubspotError> {
        let seq = self.next.fetch_add(1, Ordering::SeqCst);
        let url = format!("{}{}", self.base_url, call.path);
        let body = match &call.payload {
            Payload::Empty => Value::Null,
            Payload::Json(v) => v.clone(),
            Payload::File(f) => {
                let size = f
                    .objects
                    .head(&f.key)
                    .await
                    .map_err(|e| HubspotError::Storage(format!("media bucket: {e}")))?;
                json!({
                    "fileName": f.file_name,
                    "folderPath": f.folder_path,
                    "options": f.options,
                    "file": {"from": f.objects.link(&f.key), "bytes": size, "contentType": f.content_type},
                })
            }
        };
        let content_type = match call.payload {
            Payload::Empty => Value::Null,
            Payload::Json(_) => "application/json".into(),
            Payload::File(_) => "multipart/form-data".into(),
        };
        let request = json!({
            "method": call.method.as_str(),
            "url": url,
            "headers": {"authorization": "Bearer <HUBSPOT_ACCESS_TOKEN>", "content-type": content_type},
            "body": body,
        });
        let slug: String = call
            .path
            .split('?')
            .next()
            .unwrap_or_default()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let name = format!(
            "{seq:06}-{}{}.json",
            call.method.as_str().to_ascii_lowercase(),
            slug.trim_end_matches('-')
        );
        let text = serde_json::to_string_pretty(&request).expect("serialisable");
        tokio::fs::write(self.dir.join(&name), text)
            .await
            .map_err(|e| HubspotError::Storage(format!("cannot write the outbox: {e}")))?;
        let path = call.path.split('?').next().unwrap_or_default();
        let (status, body) = if call.method == http::Method::GET {
            if path.contains("/associations/") {
                (200, json!({"results": []}))
            } else {
                (
                    404,
                    json!({"status":"error","message":"resource not found (outbox)","category":"OBJECT_NOT_FOUND"}),
                )
            }
        } else if path.ends_with("/search") {
            (200, json!({"total": 0, "results": []}))
        } else {
            (201, json!({"id": format!("outbox-{seq}")}))
        };
        Ok(Reply::Answer {
            status,
            retry_after: None,
            body,
        })
    }
}

#[async_trait::async_trait]
impl Transport for OutboxTransport {
    async fn send(&self, call: &Call) -> Result<Reply, HubspotError> {
        self.record(call).await
    }

    fn is_outbox(&self) -> bool {
        true
    }
}

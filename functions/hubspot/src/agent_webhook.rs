//! The AI agent's webhook (`AGENT_WEBHOOK_URL`): Baton tells the agent who answers a customer now.

use baton_shared::agent::SIGNATURE_HEADER;
use baton_shared::http::{ClientError, Timeouts};

/// Tells the AI agent who answers a customer now: a POST to `AGENT_WEBHOOK_URL`, signed like the
/// agent's own events (`X-Baton-Signature-256: sha256=<hex HMAC-SHA256 of the body>`, keyed with
/// `AGENT_EVENTS_SECRET`), so the agent can trust it.
#[derive(Clone)]
pub struct AgentNotifier {
    http: reqwest::Client,
    url: String,
    secret: secrecy::SecretString,
}

/// Why the agent was not told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the AI agent's webhook: {message}")]
pub struct NotifyError {
    pub message: String,
    pub retryable: bool,
}

impl AgentNotifier {
    pub fn new(
        url: &str,
        secret: secrecy::SecretString,
        timeout: std::time::Duration,
    ) -> Result<Self, ClientError> {
        let http = baton_shared::http::client("the AI agent's webhook", Timeouts::call(timeout))?;
        Ok(Self {
            http,
            url: url.to_owned(),
            secret,
        })
    }

    /// Posts `body`; 2xx is success, 429/5xx and transport failures are worth retrying.
    pub async fn notify(&self, body: Vec<u8>) -> Result<(), NotifyError> {
        use secrecy::ExposeSecret;
        let signature = baton_shared::whatsapp::sign(self.secret.expose_secret(), &body);
        let answer = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .map_err(|e| NotifyError {
                message: e.to_string(),
                retryable: true,
            })?;
        let status = answer.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(NotifyError {
                message: format!("answered HTTP {}", status.as_u16()),
                retryable: status.as_u16() == 429 || status.is_server_error(),
            })
        }
    }
}

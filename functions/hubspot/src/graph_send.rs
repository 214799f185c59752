//! Sending a message with the Graph API (whatsapp-contract.md §6–7):
//! `POST <base>/<version>/<phone number id>/messages` with the Bearer token, a text inside the
//! 24-hour window or an approved template outside it. Each message carries
//! `biz_opaque_callback_data`, which Meta repeats in the message's status webhooks, so a later
//! `failed` status names the reply it belongs to.

use std::time::Duration;

use baton_shared::http::{ClientError, Timeouts};
use baton_shared::retry::{Classify, ErrorClass};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

/// Meta's limit on a text message's body.
pub const MAX_TEXT_CHARS: usize = 4096;
/// Meta's limit on `biz_opaque_callback_data`.
pub const MAX_CALLBACK_CHARS: usize = 512;

/// Who to send to: a phone number (`to`) or, for customers known only by their business-scoped
/// user id, that id (`recipient`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    Phone(String),
    UserId(String),
}

impl Recipient {
    /// The customer's address: the phone number when WhatsApp gave one, else the user id.
    pub fn of(customer: &baton_shared::domain::Customer) -> Option<Self> {
        match (&customer.wa_id, &customer.user_id) {
            (Some(wa), _) => Some(Self::Phone(format!("+{}", wa.trim_start_matches('+')))),
            (None, Some(user)) => Some(Self::UserId(user.clone())),
            (None, None) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    Text(String),
    Template {
        name: String,
        language: String,
        /// The body's parameters, in order.
        params: Vec<String>,
    },
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Meta answered with an error: the message was not accepted.
    #[error("WhatsApp refused the request (HTTP {status}, error {code}{}): {message}", subcode.map(|s| format!("/{s}")).unwrap_or_default())]
    Refused {
        status: u16,
        code: i64,
        subcode: Option<i64>,
        message: String,
        /// Throttling and Meta's own failures: a later attempt may succeed.
        retryable: bool,
    },
    /// The request never reached Meta: nothing was sent.
    #[error("the Graph API could not be reached: {0}")]
    Unreachable(String),
    /// The request went out but no answer came: it may or may not have been sent.
    #[error("no answer from the Graph API: {0}")]
    Unknown(String),
}

/// Throttling, Meta's failures and a request that never left are retried; a refusal, and a send
/// whose outcome nobody knows (sending again could make a duplicate), are not.
impl Classify for SendError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Refused {
                retryable: true, ..
            }
            | Self::Unreachable(_) => ErrorClass::Retry,
            Self::Refused { .. } | Self::Unknown(_) => ErrorClass::Park,
        }
    }
}

/// Conversation Routing's refusals: the thread is not Baton's to act on (2494191, the thread
/// control error vendors report, as code or subcode) or Baton is not the Call entry point's
/// primary (138038). Meta documents no code for a non-owner's send, so a refusal that says so in
/// words counts too. Sending again cannot help: the business's routing set-up must change.
pub const NOT_THREAD_OWNER: &[i64] = &[2_494_191, 138_038];

impl SendError {
    pub fn not_thread_owner(&self) -> bool {
        match self {
            Self::Refused {
                code,
                subcode,
                message,
                ..
            } => {
                NOT_THREAD_OWNER.contains(code)
                    || subcode.is_some_and(|s| NOT_THREAD_OWNER.contains(&s))
                    || message.to_ascii_lowercase().contains("thread")
            }
            _ => false,
        }
    }
}

/// What Baton does with a thread through Meta's thread-control API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadAction {
    /// Give it to the AI agent (`pass` with `target_role: ai_agent`).
    PassToAi,
    /// Let it go idle: the customer's next message goes to the entry point's primary.
    Release,
}

impl ThreadAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PassToAi => "pass",
            Self::Release => "release",
        }
    }
}

/// Graph error codes worth trying again later (whatsapp-contract.md §7): call-rate limits,
/// throughput, the pair rate limit, and Meta's temporary failures.
fn retryable_code(code: i64) -> bool {
    matches!(code, 1 | 2 | 4 | 80007 | 130429 | 131000 | 131056)
}

#[derive(Clone)]
pub struct Sender {
    http: reqwest::Client,
    base_url: String,
    version: String,
    token: SecretString,
    /// Where thread control goes, `{phone_number_id}` standing for the number; `None`: the
    /// Graph API's `/<version>/<phone number id>/thread_control`.
    thread_control_url: Option<String>,
}

impl Sender {
    pub fn new(
        base_url: &str,
        version: &str,
        token: SecretString,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let http = baton_shared::http::client("the Graph API", Timeouts::call(timeout))?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            version: version.to_owned(),
            token,
            thread_control_url: None,
        })
    }

    /// Sends thread control to `url` instead of the Graph API (`WHATSAPP_THREAD_CONTROL_URL`).
    pub fn with_thread_control_url(mut self, url: Option<String>) -> Self {
        self.thread_control_url = url;
        self
    }

    /// Passes the thread to the AI agent or releases it (Conversation Routing).
    pub async fn thread_control(
        &self,
        phone_number_id: &str,
        to: &Recipient,
        action: ThreadAction,
        metadata: &str,
    ) -> Result<(), SendError> {
        let url = match &self.thread_control_url {
            Some(template) => template.replace("{phone_number_id}", phone_number_id),
            None => format!(
                "{}/{}/{phone_number_id}/thread_control",
                self.base_url, self.version
            ),
        };
        let mut body = json!({"messaging_product": "whatsapp", "action": action.as_str(), "metadata": metadata});
        match to {
            Recipient::Phone(p) => body["to"] = json!(p.trim_start_matches('+')),
            Recipient::UserId(u) => body["recipient"] = json!(u),
        }
        if action == ThreadAction::PassToAi {
            body["control_pass"] = json!({"target_role": "ai_agent"});
        }
        self.post(&url, &body).await.map(|_| ())
    }

    /// The request body for one message.
    pub fn body(to: &Recipient, message: &Outgoing, callback: &str) -> Value {
        let mut body = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "biz_opaque_callback_data": callback,
        });
        match to {
            Recipient::Phone(p) => body["to"] = json!(p),
            Recipient::UserId(u) => body["recipient"] = json!(u),
        }
        match message {
            Outgoing::Text(text) => {
                body["type"] = json!("text");
                body["text"] = json!({"preview_url": false, "body": text});
            }
            Outgoing::Template {
                name,
                language,
                params,
            } => {
                body["type"] = json!("template");
                let mut template = json!({
                    "name": name,
                    "language": {"code": language, "policy": "deterministic"},
                });
                if !params.is_empty() {
                    let parameters: Vec<Value> = params
                        .iter()
                        .map(|p| json!({"type": "text", "text": p}))
                        .collect();
                    template["components"] = json!([{"type": "body", "parameters": parameters}]);
                }
                body["template"] = template;
            }
        }
        body
    }

    /// Sends one message; the answer's message id (wamid) when Meta accepted it.
    pub async fn send(
        &self,
        phone_number_id: &str,
        to: &Recipient,
        message: &Outgoing,
        callback: &str,
    ) -> Result<String, SendError> {
        let url = format!(
            "{}/{}/{}/messages",
            self.base_url, self.version, phone_number_id
        );
        let answer = self.post(&url, &Self::body(to, message, callback)).await?;
        answer["messages"][0]["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| SendError::Unknown("an answer without a message id".into()))
    }

    /// One Graph POST: the answer's JSON on 2xx, else Graph's error.
    async fn post(&self, url: &str, body: &Value) -> Result<Value, SendError> {
        let response = self
            .http
            .post(url)
            .bearer_auth(self.token.expose_secret())
            .json(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    SendError::Unreachable(e.to_string())
                } else {
                    SendError::Unknown(e.to_string())
                }
            })?;
        let status = response.status().as_u16();
        let answer: Value = response
            .json()
            .await
            .map_err(|e| SendError::Unknown(format!("unreadable answer (HTTP {status}): {e}")))?;
        if (200..300).contains(&status) {
            return Ok(answer);
        }
        let error = &answer["error"];
        let code = error["code"].as_i64().unwrap_or_default();
        let mut message = error["message"]
            .as_str()
            .unwrap_or("unknown error")
            .to_owned();
        if let Some(details) = error["error_data"]["details"].as_str() {
            message = format!("{message} ({details})");
        }
        Err(SendError::Refused {
            status,
            code,
            subcode: error["error_subcode"].as_i64(),
            message,
            retryable: status == 429 || status >= 500 || retryable_code(code),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_follow_the_send_contract() {
        let text = Sender::body(
            &Recipient::Phone("+16505551234".into()),
            &Outgoing::Text("Hi".into()),
            "baton|ho_1|rp#1",
        );
        assert_eq!(text["to"], "+16505551234");
        assert_eq!(text["type"], "text");
        assert_eq!(text["text"]["body"], "Hi");
        assert_eq!(text["biz_opaque_callback_data"], "baton|ho_1|rp#1");
        assert!(text.get("recipient").is_none());
        let template = Sender::body(
            &Recipient::UserId("US.1".into()),
            &Outgoing::Template {
                name: "follow_up".into(),
                language: "en_US".into(),
                params: vec!["Ana".into()],
            },
            "x",
        );
        assert_eq!(template["recipient"], "US.1");
        assert!(template.get("to").is_none());
        assert_eq!(template["template"]["name"], "follow_up");
        assert_eq!(template["template"]["language"]["code"], "en_US");
        assert_eq!(
            template["template"]["components"][0]["parameters"][0]["text"],
            "Ana"
        );
    }
}

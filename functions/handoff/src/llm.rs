//! An optional summary writer: any OpenAI-compatible chat-completions endpoint
//! (`LLM_BASE_URL`, `LLM_MODEL`, `LLM_API_KEY`, `LLM_TIMEOUT_MS`). When it is down, slow or
//! answers nonsense, the built-in summary is used and the handoff goes ahead.

use std::time::Duration;

use baton_shared::http::{ClientError, Timeouts};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

/// Characters of transcript sent at most (the end of the conversation, where the handoff is).
pub const MAX_PROMPT_CHARS: usize = 12_000;
/// Longest summary kept.
pub const MAX_SUMMARY_CHARS: usize = 1_000;

#[derive(Clone)]
pub struct LlmConfig {
    /// e.g. `https://api.openai.com/v1`; `/chat/completions` is appended.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<SecretString>,
    pub timeout: Duration,
}

impl std::fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "(set)"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct LlmClient {
    http: reqwest::Client,
    config: LlmConfig,
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<String>,
}

const INSTRUCTIONS: &str = "You summarise a WhatsApp support conversation for the human agent who takes it over. \
In at most four short sentences, in English, say what the customer wants, what has been tried, and what is still open. \
Quote order numbers and amounts exactly. Do not invent facts. Plain text only.";

impl LlmClient {
    pub fn new(config: LlmConfig) -> Result<Self, ClientError> {
        let http = baton_shared::http::client("the LLM endpoint", Timeouts::call(config.timeout))?;
        Ok(Self { http, config })
    }

    /// A summary of `transcript` (its last [`MAX_PROMPT_CHARS`] characters), or why not.
    pub async fn summarize(&self, transcript: &str) -> Result<String, String> {
        let chars = transcript.chars().count();
        let tail: String = transcript
            .chars()
            .skip(chars.saturating_sub(MAX_PROMPT_CHARS))
            .collect();
        let body = json!({
            "model": self.config.model,
            "temperature": 0.2,
            "max_tokens": 300,
            "messages": [
                {"role": "system", "content": INSTRUCTIONS},
                {"role": "user", "content": tail},
            ],
        });
        let url = format!(
            "{}/chat/completions",
            self.config.base_url.trim_end_matches('/')
        );
        let mut req = self.http.post(url).json(&body);
        if let Some(key) = &self.config.api_key {
            req = req.bearer_auth(key.expose_secret());
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_timeout() {
                format!(
                    "the LLM did not answer within {} ms",
                    self.config.timeout.as_millis()
                )
            } else {
                format!("the LLM could not be reached: {e}")
            }
        })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("the LLM answered {status}"));
        }
        let completion: Completion = resp
            .json()
            .await
            .map_err(|e| format!("the LLM's answer is not a chat completion: {e}"))?;
        let text = completion
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| "the LLM returned no text".to_owned())?;
        Ok(if text.chars().count() > MAX_SUMMARY_CHARS {
            text.chars().take(MAX_SUMMARY_CHARS - 1).collect::<String>() + "…"
        } else {
            text
        })
    }
}

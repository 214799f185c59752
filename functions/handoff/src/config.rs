//! What the handoff function is configured with, read once from its settings.

use baton_shared::config::{
    BEDROCK_MODEL_ID, BEDROCK_TIMEOUT_MS, BEDROCK_TOKEN_BUDGET, ConfigError, HANDOFF_FAILURES,
    HANDOFF_KEYWORDS, LLM_API_KEY, LLM_BASE_URL, LLM_MODEL, LLM_TIMEOUT_MS, MEDIA_COPY_QUEUE_URL,
    MEDIA_WAIT_SECONDS, Source, graph_config, number, optional, required, s3_path_style,
};
use baton_shared::whatsapp::graph::GraphConfig;
use secrecy::SecretString;

use std::sync::Arc;

use baton_shared::http::ClientError;
use baton_shared::objects::ObjectStore;
use baton_shared::store::HandoffStore;

use crate::bedrock::BedrockConfig;
use crate::llm::{LlmClient, LlmConfig};
use crate::media::MediaCopier;
use crate::process::{HandoffSettings, Processor};

/// What the handoff function is configured with.
#[derive(Debug, Clone)]
pub struct HandoffConfig {
    pub graph: GraphConfig,
    pub settings: HandoffSettings,
    pub llm: Option<LlmConfig>,
    /// Amazon Bedrock, when `BEDROCK_MODEL_ID` names a model.
    pub bedrock: Option<BedrockConfig>,
    /// The SQS queue media copies run through (`MEDIA_COPY_QUEUE_URL`); `None` copies inline.
    pub copy_queue_url: Option<String>,
    /// Path-style S3 addressing, for S3-compatible servers.
    pub s3_path_style: bool,
}

impl HandoffConfig {
    /// The function's processor on `store` and `objects`. Without a WhatsApp token it still
    /// runs: handoffs open, and files are recorded as not copied until the token is set.
    pub fn build(
        self,
        store: Arc<dyn HandoffStore>,
        objects: Arc<dyn ObjectStore>,
    ) -> Result<Processor, ClientError> {
        let copier = MediaCopier::new(self.graph, objects)?;
        let llm = self.llm.map(LlmClient::new).transpose()?;
        Ok(Processor::new(store, copier, llm, self.settings))
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let graph = graph_config(src)?;
        let keywords = match optional(src, HANDOFF_KEYWORDS) {
            None => Default::default(),
            Some(json) => serde_json::from_str(&json).map_err(|e| ConfigError::Invalid {
                name: HANDOFF_KEYWORDS,
                reason: format!(r#"it must be a JSON object of language → keywords, e.g. {{"en":["chargeback"]}}: {e}"#),
            })?,
        };
        let settings = HandoffSettings {
            failure_threshold: number(src, HANDOFF_FAILURES, 3)?,
            keywords,
            media_wait: std::time::Duration::from_secs(number(
                src,
                MEDIA_WAIT_SECONDS,
                crate::process::MEDIA_WAIT.as_secs(),
            )?),
        };
        let llm = match optional(src, LLM_BASE_URL) {
            None => None,
            Some(base_url) => Some(LlmConfig {
                base_url,
                model: required(
                    src,
                    LLM_MODEL,
                    "name the chat model the LLM endpoint should use",
                )?,
                api_key: optional(src, LLM_API_KEY).map(SecretString::from),
                timeout: std::time::Duration::from_millis(number(src, LLM_TIMEOUT_MS, 8000)?),
            }),
        };
        let bedrock = match optional(src, BEDROCK_MODEL_ID) {
            None => None,
            Some(model_id) => {
                let defaults = BedrockConfig::new(model_id.trim());
                Some(BedrockConfig {
                    timeout: std::time::Duration::from_millis(number(
                        src,
                        BEDROCK_TIMEOUT_MS,
                        defaults.timeout.as_millis() as u64,
                    )?),
                    token_budget: number(src, BEDROCK_TOKEN_BUDGET, defaults.token_budget)?,
                    ..defaults
                })
            }
        };
        Ok(Self {
            graph,
            settings,
            llm,
            bedrock,
            copy_queue_url: optional(src, MEDIA_COPY_QUEUE_URL),
            s3_path_style: s3_path_style(src),
        })
    }
}

#[cfg(test)]
mod tests {
    use baton_shared::config::{ACCESS_TOKEN, ACCESS_TOKEN_PLACEHOLDER};

    use super::*;

    #[test]
    fn handoff_settings_have_defaults_and_name_what_is_wrong() {
        let c = HandoffConfig::from_source(&[("X", "y")]).unwrap();
        assert_eq!(c.graph.base_url, "https://graph.facebook.com");
        assert!(c.graph.token.is_none() && c.llm.is_none() && c.bedrock.is_none());
        let c =
            HandoffConfig::from_source(&[(BEDROCK_MODEL_ID, "us.amazon.nova-lite-v1:0")]).unwrap();
        let b = c.bedrock.unwrap();
        assert_eq!(
            (b.model_id.as_str(), b.timeout.as_millis(), b.token_budget),
            ("us.amazon.nova-lite-v1:0", 8000, 6000)
        );
        assert_eq!(c.settings.failure_threshold, 3);
        let c = HandoffConfig::from_source(&[
            (HANDOFF_KEYWORDS, r#"{"en":["chargeback"]}"#),
            (HANDOFF_FAILURES, "0"),
            (LLM_BASE_URL, "http://127.0.0.1:1/v1"),
            (LLM_MODEL, "m"),
        ])
        .unwrap();
        assert_eq!(c.settings.keywords["en"], ["chargeback"]);
        assert_eq!(c.settings.failure_threshold, 0);
        assert_eq!(c.llm.unwrap().timeout.as_millis(), 8000);
        let c = HandoffConfig::from_source(&[(ACCESS_TOKEN, ACCESS_TOKEN_PLACEHOLDER)]).unwrap();
        assert!(
            c.graph.token.is_none(),
            "the template's placeholder is no token"
        );
        let err = HandoffConfig::from_source(&[(HANDOFF_KEYWORDS, "[1]")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("BATON_HANDOFF_KEYWORDS is invalid")
        );
        let err = HandoffConfig::from_source(&[(LLM_BASE_URL, "http://x")]).unwrap_err();
        assert!(err.to_string().starts_with("LLM_MODEL is not set"));
    }
}

//! What the handoff function is configured with, read once from its settings.

use baton_shared::config::{
    ConfigError, HANDOFF_FAILURES, HANDOFF_KEYWORDS, LLM_API_KEY, LLM_BASE_URL, LLM_MODEL,
    LLM_TIMEOUT_MS, MEDIA_WAIT_SECONDS, Source, graph_config, number, optional, required,
    s3_path_style,
};
use baton_shared::whatsapp::graph::GraphConfig;
use secrecy::SecretString;

use std::sync::Arc;

use baton_shared::http::ClientError;
use baton_shared::objects::ObjectStore;
use baton_shared::store::HandoffStore;

use crate::llm::{LlmClient, LlmConfig};
use crate::media::MediaCopier;
use crate::process::{HandoffSettings, Processor};

/// What the handoff function is configured with.
#[derive(Debug, Clone)]
pub struct HandoffConfig {
    pub graph: GraphConfig,
    pub settings: HandoffSettings,
    pub llm: Option<LlmConfig>,
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
        Ok(Self {
            graph,
            settings,
            llm,
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
        assert!(c.graph.token.is_none() && c.llm.is_none());
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

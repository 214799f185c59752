//! What the webhook function is configured with, read once into typed values: the secrets that
//! verify each sender, the public URL, and the session pages' settings. A missing or invalid
//! setting is an error that names it; nothing here exits the process.

use std::sync::Arc;
use std::time::Duration;

use baton_shared::config::{
    AGENT_EVENTS_SECRET, AGENT_EVENTS_SECRET_PLACEHOLDER, APP_SECRET, APP_SECRET_PLACEHOLDER,
    ConfigError, HUBSPOT_APP_SECRET, HUBSPOT_APP_SECRET_PLACEHOLDER, MEDIA_BUCKET, PUBLIC_BASE_URL,
    SESSION_LINK_SECRET, SESSION_LINK_TTL_DAYS, SESSION_MEDIA_URL_SECS, Source, VERIFY_TOKEN,
    number, optional, required, retention_days, s3_path_style, unless_placeholder,
};
use baton_shared::objects::S3Store;
use baton_shared::session::{DEFAULT_TTL_DAYS, SessionLinks};
use baton_shared::store::DynamoDbStore;
use baton_shared::whatsapp::AppSecrets;
use secrecy::SecretString;

use crate::Webhook;
use crate::session_page::{DEFAULT_MEDIA_URL_SECS, SessionPages};

/// What the webhook function needs to verify deliveries.
#[derive(Debug, Clone)]
pub struct WebhookSecrets {
    /// One or more Meta App Secrets (comma-separated while rotating).
    pub app_secrets: AppSecrets,
    pub verify_token: SecretString,
    /// Keys of the AI agent's event signatures (comma-separated while rotating); `None` refuses
    /// every agent event.
    pub agent_secrets: Option<AppSecrets>,
    /// The HubSpot app's client secret(s), key of `X-HubSpot-Signature-v3`; `None` refuses every
    /// HubSpot event.
    pub hubspot_secrets: Option<AppSecrets>,
}

impl WebhookSecrets {
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let list = required(
            src,
            APP_SECRET,
            "set it to the App Secret from Meta's App Dashboard (Settings > Basic); list several, comma-separated, while rotating",
        )?;
        let app_secrets = AppSecrets::parse(&list).ok_or(ConfigError::Invalid {
            name: APP_SECRET,
            reason: "it lists no secret".to_owned(),
        })?;
        let verify_token = required(
            src,
            VERIFY_TOKEN,
            "set it to the Verify token you type into Meta's webhook configuration",
        )?;
        Ok(Self {
            app_secrets,
            verify_token: SecretString::from(verify_token),
            agent_secrets: unless_placeholder(
                optional(src, AGENT_EVENTS_SECRET),
                AGENT_EVENTS_SECRET_PLACEHOLDER,
            )
            .and_then(|l| AppSecrets::parse(&l)),
            hubspot_secrets: Self::hubspot_secrets(src),
        })
    }

    /// `HUBSPOT_APP_SECRET`, unless absent or still the placeholder.
    pub fn hubspot_secrets(src: &dyn Source) -> Option<AppSecrets> {
        unless_placeholder(
            optional(src, HUBSPOT_APP_SECRET),
            HUBSPOT_APP_SECRET_PLACEHOLDER,
        )
        .and_then(|l| AppSecrets::parse(&l))
    }
}

impl WebhookSecrets {
    /// True while the deployed secret still holds template.yaml's placeholder.
    pub fn app_secret_is_placeholder(&self) -> bool {
        use secrecy::ExposeSecret;
        self.app_secrets.current().expose_secret() == APP_SECRET_PLACEHOLDER
    }
}

/// The session pages' settings: present when the stack gives the link key and the bucket.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub link_secret: SecretString,
    pub bucket: String,
    pub link_ttl_days: u32,
    pub media_url_ttl: Duration,
}

/// Everything the webhook function reads at start-up.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub secrets: WebhookSecrets,
    pub public_base_url: Option<String>,
    pub retention_days: Option<u32>,
    pub sessions: Option<SessionSettings>,
    pub s3_path_style: bool,
}

impl WebhookConfig {
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let sessions = match (
            optional(src, SESSION_LINK_SECRET),
            optional(src, MEDIA_BUCKET),
        ) {
            (Some(secret), Some(bucket)) => Some(SessionSettings {
                link_secret: secret.into(),
                bucket,
                link_ttl_days: number(src, SESSION_LINK_TTL_DAYS, DEFAULT_TTL_DAYS)?,
                media_url_ttl: Duration::from_secs(number(
                    src,
                    SESSION_MEDIA_URL_SECS,
                    DEFAULT_MEDIA_URL_SECS,
                )?),
            }),
            _ => None,
        };
        Ok(Self {
            secrets: WebhookSecrets::from_source(src)?,
            public_base_url: optional(src, PUBLIC_BASE_URL),
            retention_days: retention_days(src)?,
            sessions,
            s3_path_style: s3_path_style(src),
        })
    }

    /// What works but will not do what a team expects, for the logs at start-up.
    pub fn warnings(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.secrets.app_secret_is_placeholder() {
            out.push(
                "WHATSAPP_APP_SECRET is still the placeholder: every delivery will be refused with 401 \
                 until the Meta App Secret is put into the stack's secret (see the README)",
            );
        }
        if self.secrets.agent_secrets.is_none() {
            out.push(
                "AGENT_EVENTS_SECRET is not set (or still the placeholder): POST /agent/events answers \
                 401 until it is put into the stack's secret",
            );
        }
        if self.secrets.hubspot_secrets.is_none() {
            out.push(
                "HUBSPOT_APP_SECRET is not set: POST /hubspot/events answers 401, so reps' replies and \
                 ticket closes are not seen until the HubSpot app's client secret is in the stack's secret",
            );
        }
        if self.sessions.is_none() {
            out.push("SESSION_LINK_SECRET or MEDIA_BUCKET is not set: session pages answer 404");
        }
        out
    }

    /// The webhook on DynamoDB's `table` and, for session pages, S3.
    pub fn build(self, aws: &aws_config::SdkConfig, table: String) -> Webhook {
        let store =
            Arc::new(DynamoDbStore::from_config(aws, table).with_retention(self.retention_days));
        let app = Webhook::new(store.clone(), self.secrets)
            .with_public_base_url(self.public_base_url.clone());
        let Some(s) = self.sessions else {
            return app;
        };
        let links = SessionLinks::new(
            self.public_base_url.as_deref().unwrap_or_default(),
            s.link_secret,
            s.link_ttl_days,
        );
        let objects = S3Store::from_config(aws, s.bucket, self.s3_path_style);
        app.with_sessions(
            SessionPages::new(store.clone(), store, Arc::new(objects), links)
                .with_media_url_ttl(s.media_url_ttl),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_settings_are_named() {
        let err = WebhookSecrets::from_source(&[("WHATSAPP_VERIFY_TOKEN", "t")]).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Missing {
                name: APP_SECRET,
                ..
            }
        ));
        assert!(
            err.to_string()
                .starts_with("WHATSAPP_APP_SECRET is not set")
        );
        let err = WebhookSecrets::from_source(&[("WHATSAPP_APP_SECRET", "s")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("WHATSAPP_VERIFY_TOKEN is not set")
        );
        let err = WebhookSecrets::from_source(&[
            ("WHATSAPP_APP_SECRET", " , "),
            ("WHATSAPP_VERIFY_TOKEN", "t"),
        ])
        .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                name: APP_SECRET,
                ..
            }
        ));
    }

    #[test]
    fn rotation_lists_are_accepted_and_secrets_never_printed() {
        let s = WebhookSecrets::from_source(&[
            ("WHATSAPP_APP_SECRET", "Zq81newsecret, Zq81oldsecret"),
            ("WHATSAPP_VERIFY_TOKEN", "Zq81verify"),
        ])
        .unwrap();
        assert_eq!(s.app_secrets.len(), 2);
        let shown = format!("{s:?}");
        assert!(!shown.contains("Zq81"), "{shown}");
    }

    #[test]
    fn the_agent_secret_placeholder_signs_nothing() {
        let w = WebhookSecrets::from_source(&[
            (APP_SECRET, "a"),
            (VERIFY_TOKEN, "t"),
            (AGENT_EVENTS_SECRET, AGENT_EVENTS_SECRET_PLACEHOLDER),
        ])
        .unwrap();
        assert!(
            w.agent_secrets.is_none(),
            "the template's placeholder signs nothing"
        );
    }
}

//! Configuration read once at start-up from environment variables (names as in the design
//! notes), into typed values. A missing or invalid setting is an error that names the variable.

use secrecy::SecretString;

use crate::whatsapp::AppSecrets;

/// A configuration problem, naming the variable and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not set: {hint}")]
    Missing {
        name: &'static str,
        hint: &'static str,
    },
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Where settings come from: the process environment, or a map in tests.
pub trait Source {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<const N: usize> Source for [(&str, &str); N] {
    fn get(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

/// A setting's value, with blank values treated as unset.
pub fn optional(src: &dyn Source, name: &str) -> Option<String> {
    src.get(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

pub fn required(
    src: &dyn Source,
    name: &'static str,
    hint: &'static str,
) -> Result<String, ConfigError> {
    optional(src, name).ok_or(ConfigError::Missing { name, hint })
}

pub const APP_SECRET: &str = "WHATSAPP_APP_SECRET";
pub const VERIFY_TOKEN: &str = "WHATSAPP_VERIFY_TOKEN";
pub const TABLE_NAME: &str = "TABLE_NAME";

/// What the webhook function needs to verify deliveries.
#[derive(Debug, Clone)]
pub struct WebhookSecrets {
    /// One or more Meta App Secrets (comma-separated while rotating).
    pub app_secrets: AppSecrets,
    pub verify_token: SecretString,
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
        })
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
}

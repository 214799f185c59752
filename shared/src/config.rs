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

/// Names the Secrets Manager secret (a JSON object keyed by the variable names above) that the
/// deployed functions read their secrets from, so no secret sits in a parameter or in the
/// function's environment.
pub const SECRET_ARN: &str = "BATON_SECRET_ARN";

/// The value template.yaml puts in the secret until the team sets their Meta App Secret.
pub const APP_SECRET_PLACEHOLDER: &str = "replace-with-your-meta-app-secret";

/// Settings from the environment, then from the secret named by `BATON_SECRET_ARN`.
pub struct Settings {
    env: Box<dyn Source + Send + Sync>,
    secret: std::collections::HashMap<String, String>,
}

impl Source for Settings {
    fn get(&self, name: &str) -> Option<String> {
        self.env
            .get(name)
            .filter(|v| !v.trim().is_empty())
            .or_else(|| self.secret.get(name).cloned())
    }
}

impl Settings {
    /// The process environment, overlaid with the secret when `BATON_SECRET_ARN` is set.
    pub async fn load(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let secret = match optional(&ProcessEnv, SECRET_ARN) {
            Some(arn) => read_secret(&aws_sdk_secretsmanager::Client::new(aws), &arn).await?,
            None => Default::default(),
        };
        Ok(Self {
            env: Box::new(ProcessEnv),
            secret,
        })
    }

    pub fn from_parts(
        env: Box<dyn Source + Send + Sync>,
        secret: std::collections::HashMap<String, String>,
    ) -> Self {
        Self { env, secret }
    }
}

/// Reads a secret holding a JSON object of strings. Errors never quote the secret's content.
pub async fn read_secret(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<std::collections::HashMap<String, String>, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        name: SECRET_ARN,
        reason,
    };
    let out = client.get_secret_value().secret_id(arn).send().await.map_err(|e| {
        invalid(format!(
            "cannot read the secret (does the function's role allow secretsmanager:GetSecretValue?): {}",
            aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
        ))
    })?;
    let text = out
        .secret_string()
        .ok_or_else(|| invalid("the secret has no SecretString".to_owned()))?;
    serde_json::from_str(text)
        .map_err(|_| invalid("the secret is not a JSON object of string values".to_owned()))
}

impl WebhookSecrets {
    /// True while the deployed secret still holds template.yaml's placeholder.
    pub fn app_secret_is_placeholder(&self) -> bool {
        use secrecy::ExposeSecret;
        self.app_secrets.current().expose_secret() == APP_SECRET_PLACEHOLDER
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_wins_over_the_secret_and_blank_values_fall_through() {
        let secret = std::collections::HashMap::from([
            (APP_SECRET.to_owned(), "from-secret".to_owned()),
            (VERIFY_TOKEN.to_owned(), "token-from-secret".to_owned()),
        ]);
        let env = [(VERIFY_TOKEN, "token-from-env"), (APP_SECRET, " ")];
        let s = Settings::from_parts(Box::new(env), secret);
        assert_eq!(s.get(APP_SECRET).as_deref(), Some("from-secret"));
        assert_eq!(s.get(VERIFY_TOKEN).as_deref(), Some("token-from-env"));
        assert_eq!(s.get("OTHER"), None);
    }

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

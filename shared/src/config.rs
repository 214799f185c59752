//! Configuration read once at start-up from environment variables (names as in the design
//! notes), into typed values. A missing or invalid setting is an error that names the variable.

use std::sync::Arc;

use secrecy::SecretString;

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

pub const AGENT_EVENTS_SECRET: &str = "AGENT_EVENTS_SECRET";
/// The HubSpot app's client secret: the key of the webhook's v3 signature.
pub const HUBSPOT_APP_SECRET: &str = "HUBSPOT_APP_SECRET";
/// What the README suggests typing until the HubSpot app's client secret is at hand.
pub const HUBSPOT_APP_SECRET_PLACEHOLDER: &str = "replace-with-your-hubspot-app-client-secret";
/// Where the AI agent is told who answers the customer (signed with `AGENT_EVENTS_SECRET`).
pub const AGENT_WEBHOOK_URL: &str = "AGENT_WEBHOOK_URL";
/// The approved template sent when a rep replies outside the 24-hour window.
pub const REPLY_TEMPLATE: &str = "WHATSAPP_REPLY_TEMPLATE";
pub const REPLY_TEMPLATE_LANGUAGE: &str = "WHATSAPP_REPLY_TEMPLATE_LANGUAGE";
/// The template's body parameters, in order, comma-separated: `customer_name`, `ticket_id`,
/// `handoff_id`, `reply` (the rep's text).
pub const REPLY_TEMPLATE_PARAMS: &str = "WHATSAPP_REPLY_TEMPLATE_PARAMS";
/// template.yaml's placeholders: a secret still set to one counts as not set (a published value
/// must never sign anything).
pub const AGENT_EVENTS_SECRET_PLACEHOLDER: &str = "replace-with-a-long-random-secret";
pub const ACCESS_TOKEN_PLACEHOLDER: &str = "replace-with-your-whatsapp-access-token";

/// `value`, unless it is still template.yaml's `placeholder`.
pub fn unless_placeholder(value: Option<String>, placeholder: &str) -> Option<String> {
    value.filter(|v| v != placeholder)
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
    /// Several secrets may be named, comma-separated; the first to hold a name wins.
    pub async fn load(aws: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let mut secret = std::collections::HashMap::new();
        if let Some(arns) = optional(&ProcessEnv, SECRET_ARN) {
            let client = aws_sdk_secretsmanager::Client::new(aws);
            for arn in arns.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                for (k, v) in read_secret(&client, arn).await? {
                    secret.entry(k).or_insert(v);
                }
            }
        }
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

pub const MEDIA_BUCKET: &str = "MEDIA_BUCKET";
pub const ACCESS_TOKEN: &str = "WHATSAPP_ACCESS_TOKEN";
pub const GRAPH_API_BASE_URL: &str = "GRAPH_API_BASE_URL";
pub const GRAPH_API_VERSION: &str = "GRAPH_API_VERSION";
pub const HANDOFF_FAILURES: &str = "BATON_HANDOFF_FAILURES";
/// The Amazon Bedrock model (or inference profile) that writes the insights; unset or empty: none.
pub const BEDROCK_MODEL_ID: &str = "BEDROCK_MODEL_ID";
/// How long the Bedrock call may take (ms) before the built-in insights are used.
pub const BEDROCK_TIMEOUT_MS: &str = "BEDROCK_TIMEOUT_MS";
/// Transcript tokens sent to the model at most.
pub const BEDROCK_TOKEN_BUDGET: &str = "BEDROCK_TOKEN_BUDGET";
/// Seconds a handoff waits for the conversation's files still being copied.
pub const MEDIA_WAIT_SECONDS: &str = "BATON_MEDIA_WAIT_SECONDS";
/// The SQS queue the Lambda's media copies run through.
pub const MEDIA_COPY_QUEUE_URL: &str = "MEDIA_COPY_QUEUE_URL";
pub const HANDOFF_KEYWORDS: &str = "BATON_HANDOFF_KEYWORDS";
pub const S3_PATH_STYLE: &str = "BATON_S3_PATH_STYLE";
pub const SESSION_LINK_SECRET: &str = "SESSION_LINK_SECRET";
pub const SESSION_LINK_TTL_DAYS: &str = "SESSION_LINK_TTL_DAYS";
pub const SESSION_MEDIA_URL_SECS: &str = "SESSION_MEDIA_URL_SECS";
pub const PUBLIC_BASE_URL: &str = "PUBLIC_BASE_URL";
/// Days items are kept in the table (and, by the bucket's lifecycle rule, objects in the bucket).
pub const RETENTION_DAYS: &str = "RETENTION_DAYS";

/// `RETENTION_DAYS`, when set to a whole number of days above 0.
pub fn retention_days(src: &dyn Source) -> Result<Option<u32>, ConfigError> {
    match optional(src, RETENTION_DAYS) {
        None => Ok(None),
        Some(_) => Ok(Some(number::<u32>(src, RETENTION_DAYS, 0)?).filter(|d| *d > 0)),
    }
}
pub const LLM_BASE_URL: &str = "LLM_BASE_URL";
pub const LLM_MODEL: &str = "LLM_MODEL";
pub const LLM_API_KEY: &str = "LLM_API_KEY";
pub const LLM_TIMEOUT_MS: &str = "LLM_TIMEOUT_MS";

/// Whether S3 is addressed path-style (`BATON_S3_PATH_STYLE`: `1` or `true`), as S3-protocol
/// servers other than AWS need.
pub fn s3_path_style(src: &dyn Source) -> bool {
    optional(src, S3_PATH_STYLE).is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// What a stream function (handoff, HubSpot) starts from: its settings (the environment
/// overlaid with the stack's secret), and the table and media bucket template.yaml names.
pub struct StreamFunction {
    /// The AWS configuration loaded once at start-up, for any further client.
    pub aws: aws_config::SdkConfig,
    pub settings: Settings,
    pub store: Arc<crate::store::DynamoDbStore>,
    pub objects: Arc<crate::objects::S3Store>,
}

impl StreamFunction {
    pub async fn load() -> Result<Self, ConfigError> {
        let table = required(
            &ProcessEnv,
            TABLE_NAME,
            "template.yaml sets it to the Baton table",
        )?;
        let bucket = required(
            &ProcessEnv,
            MEDIA_BUCKET,
            "template.yaml sets it to the media bucket",
        )?;
        let aws = crate::retry::load_aws().await;
        let settings = Settings::load(&aws).await?;
        Ok(Self {
            store: Arc::new(
                crate::store::DynamoDbStore::from_config(&aws, table)
                    .with_retention(retention_days(&settings)?),
            ),
            objects: Arc::new(crate::objects::S3Store::from_config(
                &aws,
                bucket,
                s3_path_style(&settings),
            )),
            settings,
            aws,
        })
    }
}

/// A whole-number setting, `default` when unset.
pub fn number<T: std::str::FromStr>(
    src: &dyn Source,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match optional(src, name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
            name,
            reason: format!("{v:?} is not a whole number"),
        }),
    }
}

/// Where the Graph API is and the WhatsApp token (absent, or still the placeholder: `None`).
pub fn graph_config(src: &dyn Source) -> Result<crate::whatsapp::graph::GraphConfig, ConfigError> {
    use crate::whatsapp::graph::GraphConfig;
    let graph = GraphConfig::new(
        optional(src, GRAPH_API_BASE_URL).unwrap_or_else(|| GraphConfig::DEFAULT_BASE_URL.into()),
        optional(src, GRAPH_API_VERSION).unwrap_or_else(|| GraphConfig::DEFAULT_VERSION.into()),
        unless_placeholder(optional(src, ACCESS_TOKEN), ACCESS_TOKEN_PLACEHOLDER)
            .map(SecretString::from),
    );
    if !(graph.base_url.starts_with("https://") || graph.base_url.starts_with("http://")) {
        return Err(ConfigError::Invalid {
            name: GRAPH_API_BASE_URL,
            reason: "it must be an http(s) URL".into(),
        });
    }
    Ok(graph)
}

/// The agent events secret, unless absent or still the placeholder.
pub fn agent_events_secret(src: &dyn Source) -> Option<String> {
    unless_placeholder(
        optional(src, AGENT_EVENTS_SECRET),
        AGENT_EVENTS_SECRET_PLACEHOLDER,
    )
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
}

//! The HubSpot function's settings, read once into typed values; a bad value names its variable.

use std::collections::BTreeMap;
use std::time::Duration;

use baton_shared::config::{
    AGENT_WEBHOOK_URL, REPLY_TEMPLATE, REPLY_TEMPLATE_LANGUAGE, REPLY_TEMPLATE_PARAMS,
};
use baton_shared::config::{ConfigError, Source, number, optional, required};
use baton_shared::session::{DEFAULT_TTL_DAYS, SessionLinks};
use baton_shared::whatsapp::graph::GraphConfig;
use secrecy::SecretString;

use crate::api::Properties;

pub const ACCESS_TOKEN: &str = "HUBSPOT_ACCESS_TOKEN";
pub const BASE_URL: &str = "HUBSPOT_BASE_URL";
pub const PIPELINE: &str = "HUBSPOT_TICKET_PIPELINE";
pub const STAGE: &str = "HUBSPOT_TICKET_STAGE";
pub const PRIORITY_MAP: &str = "HUBSPOT_PRIORITY_MAP";
pub const RATE_LIMIT: &str = "HUBSPOT_RATE_LIMIT_PER_10S";
pub const SEARCH_RATE: &str = "HUBSPOT_SEARCH_PER_SECOND";
pub const TIMEOUT_MS: &str = "HUBSPOT_TIMEOUT_MS";
pub const FILES_FOLDER: &str = "HUBSPOT_FILES_FOLDER";
pub const CREDENTIAL: &str = "HUBSPOT_CREDENTIAL";
pub const THREAD_HANDBACK: &str = "WHATSAPP_THREAD_HANDBACK";
pub const THREAD_CONTROL_URL: &str = "WHATSAPP_THREAD_CONTROL_URL";
pub const TICKET_DEFAULTS: &str = "HUBSPOT_TICKET_DEFAULTS";
pub const CONTACT_DEFAULTS: &str = "HUBSPOT_CONTACT_DEFAULTS";
pub const PUBLIC_BASE_URL: &str = baton_shared::config::PUBLIC_BASE_URL;
pub const SESSION_LINK_SECRET: &str = baton_shared::config::SESSION_LINK_SECRET;
pub const SESSION_LINK_TTL_DAYS: &str = baton_shared::config::SESSION_LINK_TTL_DAYS;
/// template.yaml's placeholder: a token still set to it counts as not set.
pub const ACCESS_TOKEN_PLACEHOLDER: &str = "replace-with-your-hubspot-private-app-token";

pub const DEFAULT_BASE_URL: &str = "https://api.hubapi.com";

/// What kind of HubSpot credential `HUBSPOT_ACCESS_TOKEN` is (`HUBSPOT_CREDENTIAL`): HubSpot
/// stopped the creation of legacy private apps in autumn 2026.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Credential {
    /// `app`: the token of Baton's static-auth project app (`hubspot-app/`), the recommended
    /// set-up: REST calls and webhooks.
    #[default]
    App,
    /// `private-app`: a legacy private app's token; it works until HubSpot retires legacy apps
    /// (September 2027).
    PrivateApp,
    /// `service-key`: REST calls only; HubSpot sends a service key no webhooks.
    ServiceKey,
}

impl Credential {
    pub const NAMES: &'static str = "app, private-app, service-key";

    fn parse(s: &str) -> Option<Self> {
        Some(match s.trim() {
            "app" => Self::App,
            "private-app" => Self::PrivateApp,
            "service-key" => Self::ServiceKey,
            _ => return None,
        })
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::App => "the token of Baton's HubSpot app (static auth)",
            Self::PrivateApp => "a legacy private app's token",
            Self::ServiceKey => "a service key",
        }
    }

    /// What this credential leaves off, and why (said at start-up and by the doctor).
    pub fn features_off(self) -> Option<&'static str> {
        (self == Self::ServiceKey).then_some(
            "HubSpot credential is a service key: handoffs still become contacts, tickets, notes and files, \
             but replies written in HubSpot, closing a ticket and deleting one reach neither the customer \
             nor the AI agent, because HubSpot sends a service key no webhooks (install Baton's HubSpot app for them)",
        )
    }
}

/// What Baton does with a WhatsApp thread it owns when the ticket closes
/// (`WHATSAPP_THREAD_HANDBACK`; Meta's Conversation Routing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Handback {
    /// `release`: the thread goes idle and the customer's next message goes to the entry
    /// point's primary (a third-party AI agent).
    #[default]
    Release,
    /// `pass`: `pass` with `target_role: ai_agent` (Meta's own AI, Meta Business Agent).
    PassToAi,
    /// `off`: nothing; the thread stays Baton's until 24 hours of customer silence.
    Off,
}

impl Handback {
    pub const NAMES: &'static str = "release, pass, off";

    fn parse(s: &str) -> Option<Self> {
        Some(match s.trim() {
            "release" => Self::Release,
            "pass" => Self::PassToAi,
            "off" => Self::Off,
            _ => return None,
        })
    }
}

/// Which HubSpot priority a handoff gets, by what the insights say. Keys are sentiment labels
/// (`negative`, `neutral`, `positive`) and trigger kinds (`agent_request`, `customer_asked`,
/// `keyword`, `agent_failures`); a trigger's entry wins over the sentiment's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorityMap(pub BTreeMap<String, String>);

impl Default for PriorityMap {
    fn default() -> Self {
        Self(BTreeMap::from([
            ("negative".into(), "HIGH".into()),
            ("neutral".into(), "MEDIUM".into()),
            ("positive".into(), "LOW".into()),
            ("agent_failures".into(), "HIGH".into()),
        ]))
    }
}

impl PriorityMap {
    pub fn priority(&self, trigger: &str, sentiment: &str) -> Option<&str> {
        self.0
            .get(trigger)
            .or_else(|| self.0.get(sentiment))
            .map(String::as_str)
    }
}

/// Client-side rate limits, below HubSpot's so that other integrations in the portal keep room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests per rolling 10 seconds (HubSpot allows 100–250 per app).
    pub per_ten_seconds: u32,
    /// Search requests per second (HubSpot allows 5 per account, shared by every integration).
    pub search_per_second: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_ten_seconds: 90,
            search_per_second: 4,
        }
    }
}

#[derive(Debug, Clone)]
pub struct HubspotConfig {
    pub credential: Credential,
    /// What happens to a thread Baton owns when its ticket closes.
    pub handback: Handback,
    /// `WHATSAPP_THREAD_CONTROL_URL`: thread control's address when it is not the Graph API's
    /// (`{phone_number_id}` stands for the number).
    pub thread_control_url: Option<String>,
    /// Values for properties a portal's own rules require on create (`HUBSPOT_TICKET_DEFAULTS`,
    /// `HUBSPOT_CONTACT_DEFAULTS`); Baton's own values win.
    pub ticket_defaults: Properties,
    pub contact_defaults: Properties,
    /// `None`: requests are written to an outbox instead (baton-local) or the handoff is parked
    /// with a configuration error (Lambda).
    pub token: Option<SecretString>,
    pub base_url: String,
    pub pipeline: Option<String>,
    pub stage: Option<String>,
    pub priorities: PriorityMap,
    pub limits: Limits,
    /// Bound on one request (uploads get longer, by size).
    pub timeout: Duration,
    /// Files go to `<folder>/<handoff id>/`.
    pub files_folder: String,
    /// Signed links to the session page; `None` leaves the link out.
    pub sessions: Option<SessionLinks>,
    /// The Graph API and WhatsApp token replies are sent with.
    pub graph: GraphConfig,
    /// What is sent when a rep replies outside the 24-hour window; `None`: nothing is sent and
    /// the ticket says why.
    pub reply_template: Option<ReplyTemplate>,
    /// Where the AI agent is told who answers the customer; `None`: it is not told.
    pub agent_webhook: Option<AgentWebhook>,
}

/// What fills one of the reply template's body parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateParam {
    /// The customer's WhatsApp profile name (or "there" when unknown).
    CustomerName,
    TicketId,
    HandoffId,
    /// The rep's reply text (Meta limits a parameter; long replies are cut with "…").
    Reply,
}

impl TemplateParam {
    pub const NAMES: &'static str = "customer_name, ticket_id, handoff_id, reply";

    fn parse(s: &str) -> Option<Self> {
        Some(match s.trim() {
            "customer_name" => Self::CustomerName,
            "ticket_id" => Self::TicketId,
            "handoff_id" => Self::HandoffId,
            "reply" => Self::Reply,
            _ => return None,
        })
    }
}

/// An approved WhatsApp template for replies outside the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTemplate {
    pub name: String,
    pub language: String,
    pub params: Vec<TemplateParam>,
}

#[derive(Clone)]
pub struct AgentWebhook {
    pub url: String,
    /// `AGENT_EVENTS_SECRET`, which signs the notices; `None` parks them until it is set.
    pub secret: Option<SecretString>,
}

impl std::fmt::Debug for AgentWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentWebhook")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn http_url(name: &'static str, url: String) -> Result<String, ConfigError> {
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(url.trim_end_matches('/').to_owned())
    } else {
        Err(ConfigError::Invalid {
            name,
            reason: format!("{url:?} is not an http(s) URL"),
        })
    }
}

impl HubspotConfig {
    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let priorities = match optional(src, PRIORITY_MAP) {
            None => PriorityMap::default(),
            Some(json) => {
                let map: BTreeMap<String, String> =
                    serde_json::from_str(&json).map_err(|e| ConfigError::Invalid {
                        name: PRIORITY_MAP,
                        reason: format!(
                            r#"it must be a JSON object like {{"negative":"HIGH","neutral":"MEDIUM","positive":"LOW"}}: {e}"#
                        ),
                    })?;
                PriorityMap(map)
            }
        };
        let limits = Limits {
            per_ten_seconds: number(src, RATE_LIMIT, Limits::default().per_ten_seconds)?,
            search_per_second: number(src, SEARCH_RATE, Limits::default().search_per_second)?,
        };
        if limits.per_ten_seconds == 0 || limits.search_per_second == 0 {
            return Err(ConfigError::Invalid {
                name: if limits.per_ten_seconds == 0 {
                    RATE_LIMIT
                } else {
                    SEARCH_RATE
                },
                reason: "it must be at least 1".into(),
            });
        }
        let sessions = match optional(src, PUBLIC_BASE_URL) {
            None => None,
            Some(base) => Some(SessionLinks::new(
                &http_url(PUBLIC_BASE_URL, base)?,
                SecretString::from(required(
                    src,
                    SESSION_LINK_SECRET,
                    "set it to a long random value; it signs the session links in HubSpot notes",
                )?),
                number(src, SESSION_LINK_TTL_DAYS, DEFAULT_TTL_DAYS)?,
            )),
        };
        let credential = match optional(src, CREDENTIAL) {
            None => Credential::default(),
            Some(v) => Credential::parse(&v).ok_or_else(|| ConfigError::Invalid {
                name: CREDENTIAL,
                reason: format!("{:?} is not one of {}", v.trim(), Credential::NAMES),
            })?,
        };
        let handback = match optional(src, THREAD_HANDBACK) {
            None => Handback::default(),
            Some(v) => Handback::parse(&v).ok_or_else(|| ConfigError::Invalid {
                name: THREAD_HANDBACK,
                reason: format!("{:?} is not one of {}", v.trim(), Handback::NAMES),
            })?,
        };
        let thread_control_url = optional(src, THREAD_CONTROL_URL)
            .map(|u| http_url(THREAD_CONTROL_URL, u))
            .transpose()?;
        Ok(Self {
            credential,
            handback,
            thread_control_url,
            ticket_defaults: defaults(src, TICKET_DEFAULTS)?,
            contact_defaults: defaults(src, CONTACT_DEFAULTS)?,
            token: optional(src, ACCESS_TOKEN)
                .filter(|t| t != ACCESS_TOKEN_PLACEHOLDER)
                .map(SecretString::from),
            base_url: http_url(
                BASE_URL,
                optional(src, BASE_URL).unwrap_or_else(|| DEFAULT_BASE_URL.into()),
            )?,
            pipeline: optional(src, PIPELINE),
            stage: optional(src, STAGE),
            priorities,
            limits,
            timeout: Duration::from_millis(number(src, TIMEOUT_MS, 15_000)?),
            files_folder: optional(src, FILES_FOLDER)
                .map_or_else(|| "/baton".into(), |f| format!("/{}", f.trim_matches('/'))),
            sessions,
            graph: baton_shared::config::graph_config(src)?,
            reply_template: reply_template(src)?,
            agent_webhook: match optional(src, AGENT_WEBHOOK_URL) {
                None => None,
                Some(url) => Some(AgentWebhook {
                    url: http_url(AGENT_WEBHOOK_URL, url)?,
                    // Without it the notices are parked, not the function: handoffs go on.
                    secret: baton_shared::config::agent_events_secret(src).map(SecretString::from),
                }),
            },
        })
    }
}

/// A JSON object of property values: strings, numbers and booleans, as HubSpot takes them.
fn defaults(src: &dyn Source, name: &'static str) -> Result<Properties, ConfigError> {
    let Some(json) = optional(src, name) else {
        return Ok(Properties::new());
    };
    let invalid = |reason: String| ConfigError::Invalid { name, reason };
    let value: serde_json::Value = serde_json::from_str(&json).map_err(|e| {
        invalid(format!(
            r#"it must be a JSON object like {{"lead_source":"WhatsApp"}}: {e}"#
        ))
    })?;
    let serde_json::Value::Object(map) = value else {
        return Err(invalid(
            r#"it must be a JSON object like {"lead_source":"WhatsApp"}"#.into(),
        ));
    };
    if let Some((key, _)) = map
        .iter()
        .find(|(_, v)| v.is_object() || v.is_array() || v.is_null())
    {
        return Err(invalid(format!(
            "{key}: a property's value is a string, number or boolean"
        )));
    }
    Ok(map)
}

fn reply_template(src: &dyn Source) -> Result<Option<ReplyTemplate>, ConfigError> {
    let Some(name) = optional(src, REPLY_TEMPLATE) else {
        return Ok(None);
    };
    let params = match optional(src, REPLY_TEMPLATE_PARAMS) {
        None => vec![TemplateParam::CustomerName],
        Some(list) => list
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                TemplateParam::parse(p).ok_or_else(|| ConfigError::Invalid {
                    name: REPLY_TEMPLATE_PARAMS,
                    reason: format!("{:?} is not one of {}", p.trim(), TemplateParam::NAMES),
                })
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(Some(ReplyTemplate {
        name: name.trim().to_owned(),
        language: optional(src, REPLY_TEMPLATE_LANGUAGE).unwrap_or_else(|| "en_US".into()),
        params,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_named_errors() {
        let c = HubspotConfig::from_source(&[("X", "y")]).unwrap();
        assert!(c.token.is_none() && c.sessions.is_none());
        assert_eq!(c.base_url, DEFAULT_BASE_URL);
        assert_eq!(c.priorities.priority("keyword", "negative"), Some("HIGH"));
        assert_eq!(
            c.priorities.priority("agent_failures", "positive"),
            Some("HIGH")
        );
        assert_eq!(c.files_folder, "/baton");
        let c = HubspotConfig::from_source(&[(ACCESS_TOKEN, ACCESS_TOKEN_PLACEHOLDER)]).unwrap();
        assert!(c.token.is_none(), "the template's placeholder is no token");
        let err = HubspotConfig::from_source(&[(PUBLIC_BASE_URL, "https://x")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("SESSION_LINK_SECRET is not set")
        );
        let err = HubspotConfig::from_source(&[(PRIORITY_MAP, "[]")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("HUBSPOT_PRIORITY_MAP is invalid")
        );
        let err = HubspotConfig::from_source(&[(SEARCH_RATE, "0")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("HUBSPOT_SEARCH_PER_SECOND is invalid")
        );
        let err = HubspotConfig::from_source(&[(BASE_URL, "api.hubapi.com")]).unwrap_err();
        assert!(err.to_string().starts_with("HUBSPOT_BASE_URL is invalid"));
    }

    #[test]
    fn credential_and_portal_defaults() {
        let c = HubspotConfig::from_source(&[("X", "y")]).unwrap();
        assert_eq!(c.credential, Credential::App);
        assert!(c.credential.features_off().is_none());
        assert!(c.ticket_defaults.is_empty() && c.contact_defaults.is_empty());
        let c = HubspotConfig::from_source(&[
            (CREDENTIAL, "service-key"),
            (
                TICKET_DEFAULTS,
                r#"{"lead_source":"WhatsApp","hs_ticket_category":"GENERAL_INQUIRY"}"#,
            ),
            (
                CONTACT_DEFAULTS,
                r#"{"hs_legal_basis":"Legitimate interest – existing customer","consent":true}"#,
            ),
        ])
        .unwrap();
        assert_eq!(c.credential, Credential::ServiceKey);
        assert!(c.credential.features_off().unwrap().contains("no webhooks"));
        assert_eq!(c.ticket_defaults["lead_source"], "WhatsApp");
        assert_eq!(c.contact_defaults["consent"], true);
        assert_eq!(c.handback, Handback::Release);
        let c = HubspotConfig::from_source(&[(THREAD_HANDBACK, "pass")]).unwrap();
        assert_eq!(c.handback, Handback::PassToAi);
        let err = HubspotConfig::from_source(&[(THREAD_HANDBACK, "keep")]).unwrap_err();
        assert!(err.to_string().contains("release, pass, off"), "{err}");
        let err = HubspotConfig::from_source(&[(CREDENTIAL, "oauth")]).unwrap_err();
        assert!(
            err.to_string().contains("app, private-app, service-key"),
            "{err}"
        );
        let err = HubspotConfig::from_source(&[(TICKET_DEFAULTS, r#"{"a":{"b":1}}"#)]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("HUBSPOT_TICKET_DEFAULTS is invalid"),
            "{err}"
        );
        let err =
            HubspotConfig::from_source(&[(CONTACT_DEFAULTS, "lead_source=WhatsApp")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("HUBSPOT_CONTACT_DEFAULTS is invalid"),
            "{err}"
        );
    }

    #[test]
    fn reply_settings_have_defaults_and_named_errors() {
        use baton_shared::config::AGENT_EVENTS_SECRET;
        let c = HubspotConfig::from_source(&[("X", "y")]).unwrap();
        assert!(c.reply_template.is_none() && c.agent_webhook.is_none());
        assert!(c.graph.token.is_none());
        let c = HubspotConfig::from_source(&[(REPLY_TEMPLATE, " follow_up ")]).unwrap();
        assert_eq!(
            c.reply_template,
            Some(ReplyTemplate {
                name: "follow_up".into(),
                language: "en_US".into(),
                params: vec![TemplateParam::CustomerName],
            })
        );
        let c = HubspotConfig::from_source(&[
            (REPLY_TEMPLATE, "follow_up"),
            (REPLY_TEMPLATE_LANGUAGE, "pt_BR"),
            (REPLY_TEMPLATE_PARAMS, "ticket_id, reply,handoff_id"),
        ])
        .unwrap();
        let t = c.reply_template.unwrap();
        assert_eq!(t.language, "pt_BR");
        assert_eq!(
            t.params,
            [
                TemplateParam::TicketId,
                TemplateParam::Reply,
                TemplateParam::HandoffId
            ]
        );
        let err = HubspotConfig::from_source(&[
            (REPLY_TEMPLATE, "follow_up"),
            (REPLY_TEMPLATE_PARAMS, "customer_name,order"),
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("WHATSAPP_REPLY_TEMPLATE_PARAMS is invalid"),
            "{err}"
        );
        assert!(err.to_string().contains("\"order\""), "{err}");
        let c = HubspotConfig::from_source(&[(AGENT_WEBHOOK_URL, "https://agent.example/baton")])
            .unwrap();
        assert!(
            c.agent_webhook.unwrap().secret.is_none(),
            "no secret: the notices park, the function still starts"
        );
        let c = HubspotConfig::from_source(&[
            (AGENT_WEBHOOK_URL, "https://agent.example/baton"),
            (AGENT_EVENTS_SECRET, "s3cr3t"),
        ])
        .unwrap();
        let a = c.agent_webhook.unwrap();
        assert_eq!(a.url, "https://agent.example/baton");
        assert!(!format!("{a:?}").contains("s3cr3t"), "never printed");
        let err = HubspotConfig::from_source(&[
            (AGENT_WEBHOOK_URL, "agent.example"),
            (AGENT_EVENTS_SECRET, "s3cr3t"),
        ])
        .unwrap_err();
        assert!(err.to_string().starts_with("AGENT_WEBHOOK_URL is invalid"));
    }
}

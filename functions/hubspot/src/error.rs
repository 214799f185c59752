//! What can go wrong talking to HubSpot, classified once: retry later, park until a person fixes
//! it, or a configuration error naming the scope or setting to fix.

use baton_shared::retry::{Classify, ErrorClass};
use baton_shared::store::StoreError;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum HubspotError {
    /// 429, 5xx, timeouts: a later run may succeed.
    #[error("{step}: HubSpot is unavailable ({}): {message}{}", status.map_or("no answer".to_owned(), |s| s.to_string()), correlation(correlation_id))]
    Unavailable {
        step: &'static str,
        status: Option<u16>,
        message: String,
        correlation_id: Option<String>,
    },
    /// A create timed out or got a 5xx: it may or may not exist now.
    #[error("{step}: outcome unknown ({}): {message}", status.map_or("no answer".to_owned(), |s| s.to_string()))]
    Uncertain {
        step: &'static str,
        status: Option<u16>,
        message: String,
        correlation_id: Option<String>,
    },
    /// HubSpot refused the request (validation): sending it again will not help.
    #[error(
        "{step}: HubSpot refused the request ({status}): {message}{}",
        correlation(correlation_id)
    )]
    Rejected {
        step: &'static str,
        status: u16,
        message: String,
        correlation_id: Option<String>,
    },
    /// HubSpot's daily limit for the account is used up (a 429 with policy `DAILY`): nothing
    /// succeeds before it resets, so the handoff is parked for a replay rather than retried.
    #[error(
        "{step}: HubSpot's daily API limit for this account is used up (429 DAILY); it resets at midnight in the account's time zone — replay parked handoffs then (baton-local hubspot-replay){}",
        correlation(correlation_id)
    )]
    DailyLimit {
        step: &'static str,
        correlation_id: Option<String>,
    },
    /// The token is missing, invalid or lacks a scope; or a setting names what does not exist.
    #[error("{step}: configuration error{}: {message}{}{}", status_text(*status), scope.map(|s| format!(" (the app needs the `{s}` scope)")).unwrap_or_default(), correlation(correlation_id))]
    Configuration {
        step: &'static str,
        status: u16,
        message: String,
        scope: Option<&'static str>,
        correlation_id: Option<String>,
    },
    /// A file's copy is no longer in the media bucket: the upload cannot happen, ever.
    #[error("{0}")]
    Gone(String),
    /// A peer other than HubSpot (the Graph API, the AI agent's webhook), or a step that must
    /// wait for another (the ticket a follow-up goes to).
    #[error("{step}: {message}")]
    Peer {
        step: &'static str,
        message: String,
        retryable: bool,
    },
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
    /// Reading the media bucket (files, the transcript) or writing the outbox failed.
    #[error("{0}")]
    Storage(String),
}

fn correlation(id: &Option<String>) -> String {
    id.as_ref()
        .map(|c| format!(" (correlationId {c})"))
        .unwrap_or_default()
}

fn status_text(status: u16) -> String {
    if status == 0 {
        String::new()
    } else {
        format!(" ({status})")
    }
}

/// Retried: outages, unknown outcomes, the bucket; parked with the reason: refusals, the daily
/// limit, configuration, a file that is gone.
impl Classify for HubspotError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Unavailable { .. } | Self::Uncertain { .. } | Self::Storage(_) => {
                ErrorClass::Retry
            }
            Self::Store(e) if e.is_retryable() => ErrorClass::Retry,
            Self::Peer {
                retryable: true, ..
            } => ErrorClass::Retry,
            Self::Store(_)
            | Self::Peer { .. }
            | Self::Rejected { .. }
            | Self::Configuration { .. }
            | Self::DailyLimit { .. }
            | Self::Gone(_) => ErrorClass::Park,
        }
    }
}

impl HubspotError {
    /// Failures that concern one file only: HubSpot refused the file (its type or size, say) or
    /// its copy is gone. The handoff goes on without it and the note says why; anything else
    /// (a missing scope, the rate limit, an outage) stops the handoff as usual.
    pub fn skips_file(&self) -> bool {
        matches!(self, Self::Rejected { .. } | Self::Gone(_))
    }

    pub fn uncertain(self) -> Self {
        match self {
            Self::Unavailable {
                step,
                status,
                message,
                correlation_id,
            } => Self::Uncertain {
                step,
                status,
                message,
                correlation_id,
            },
            other => other,
        }
    }

    pub fn step(&self) -> &'static str {
        match self {
            Self::Unavailable { step, .. }
            | Self::Uncertain { step, .. }
            | Self::Rejected { step, .. }
            | Self::Configuration { step, .. }
            | Self::DailyLimit { step, .. } => step,
            Self::Peer { step, .. } => step,
            Self::Store(_) => "store",
            Self::Storage(_) | Self::Gone(_) => "storage",
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Unavailable { status, .. } | Self::Uncertain { status, .. } => *status,
            Self::Rejected { status, .. } => Some(*status),
            Self::Configuration { status, .. } => (*status != 0).then_some(*status),
            Self::DailyLimit { .. } => Some(429),
            _ => None,
        }
    }

    pub fn correlation_id(&self) -> Option<&str> {
        match self {
            Self::Unavailable { correlation_id, .. }
            | Self::Uncertain { correlation_id, .. }
            | Self::Rejected { correlation_id, .. }
            | Self::Configuration { correlation_id, .. }
            | Self::DailyLimit { correlation_id, .. } => correlation_id.as_deref(),
            _ => None,
        }
    }

    /// For logs: the step, the kind of failure, the status and HubSpot's correlation id, but not
    /// HubSpot's message, which may quote property values (a phone number). The full message is
    /// on the handoff's trail.
    pub fn log_summary(&self) -> String {
        let kind = match self {
            Self::Unavailable { .. } => "unavailable",
            Self::Uncertain { .. } => "outcome unknown",
            Self::Rejected { .. } => "refused",
            // Baton's own text or HubSpot's scope message: no customer data.
            Self::Configuration { .. } | Self::DailyLimit { .. } => return self.to_string(),
            Self::Store(e) => return format!("store: {e}"),
            // Graph and agent errors carry codes and Baton's words, never the message's text.
            Self::Peer { .. } => return self.to_string(),
            Self::Storage(e) | Self::Gone(e) => return e.clone(),
        };
        format!(
            "{}: HubSpot {kind} ({}){}",
            self.step(),
            self.status()
                .map_or("no answer".to_owned(), |s| s.to_string()),
            correlation(&self.correlation_id().map(str::to_owned))
        )
    }

    pub fn config(step: &'static str, message: impl Into<String>) -> Self {
        Self::Configuration {
            step,
            status: 0,
            message: message.into(),
            scope: None,
            correlation_id: None,
        }
    }
}

/// The properties a 400 says the portal requires (2026-09 applies a portal's own rules, such as
/// the create form's required fields, to API writes): each error's `context.propertyName`, else
/// the quoted name in a message that says "required".
pub fn required_properties(body: &Value) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for e in body
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let from_context = e
            .pointer("/context/propertyName")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let message = e.get("message").and_then(Value::as_str).unwrap_or("");
        let from_message = (from_context.is_empty() && message.contains("required"))
            .then(|| message.split('"').nth(1).map(str::to_owned))
            .flatten();
        for name in from_context.into_iter().chain(from_message) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// The parts of HubSpot's error body Baton reports.
#[derive(Debug, Default)]
pub struct Problem {
    pub message: String,
    pub correlation_id: Option<String>,
    pub category: Option<String>,
    /// A 429's `policyName` (`TEN_SECONDLY_ROLLING`, `DAILY`, `SECONDLY`).
    pub policy: Option<String>,
}

pub fn problem_of(body: &Value) -> Problem {
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let mut message = text("message").unwrap_or_else(|| match body {
        Value::String(s) => s.chars().take(300).collect(),
        _ => "no message".into(),
    });
    // Validation errors list the offending fields; the rep's admin needs them.
    if let Some(Value::Array(errors)) = body.get("errors") {
        let details: Vec<&str> = errors
            .iter()
            .filter_map(|e| e.get("message").and_then(Value::as_str))
            .filter(|m| !message.contains(m))
            .take(5)
            .collect();
        if !details.is_empty() {
            message = format!("{message} ({})", details.join("; "));
        }
    }
    Problem {
        message,
        correlation_id: text("correlationId"),
        category: text("category"),
        policy: text("policyName"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_quote_hubspot_and_name_the_scope() {
        let body = serde_json::json!({"status":"error","message":"Property values were not valid","correlationId":"c-9","category":"VALIDATION_ERROR","errors":[{"message":"Property \"x\" does not exist","code":"PROPERTY_DOESNT_EXIST"}]});
        let p = problem_of(&body);
        assert_eq!(
            p.message,
            "Property values were not valid (Property \"x\" does not exist)"
        );
        let e = HubspotError::Rejected {
            step: "ticket",
            status: 400,
            message: p.message,
            correlation_id: p.correlation_id,
        };
        assert!(!e.is_retryable());
        assert!(e.to_string().ends_with("(correlationId c-9)"), "{e}");
        let e = HubspotError::Configuration {
            step: "files",
            status: 403,
            message: "This app hasn't been granted all required scopes".into(),
            scope: Some("files"),
            correlation_id: None,
        };
        assert!(e.to_string().contains("needs the `files` scope"), "{e}");
        let required = serde_json::json!({"category":"VALIDATION_ERROR","message":"Property values were not valid","errors":[
            {"message":"Property \"lead_source\" is required on create","code":"REQUIRED_FIELD","context":{"propertyName":["lead_source"]}},
            {"message":"Property \"hs_legal_basis\" is required","code":"REQUIRED_FIELD"},
            {"message":"Property \"x\" does not exist","code":"PROPERTY_DOESNT_EXIST"}]});
        assert_eq!(
            required_properties(&required),
            ["lead_source", "hs_legal_basis"]
        );
        assert!(required_properties(&body).is_empty());
    }
}

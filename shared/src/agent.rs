//! The AI agent's events (`POST /agent/events`): its replies to the customer, its reasoning, its
//! tool calls and its explicit handoff requests. Signed like Meta's webhook, with
//! `AGENT_EVENTS_SECRET`, in [`SIGNATURE_HEADER`].
//!
//! The body is one event object or `{"events": [ … ]}`; see the README for the schema.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::domain::{AgentEventKind, AgentEventRecord, ConversationKey};

/// `sha256=<hex HMAC-SHA256 of the raw body, keyed with AGENT_EVENTS_SECRET>`.
pub const SIGNATURE_HEADER: &str = "x-baton-signature-256";

/// Events per request, and bytes per event (a DynamoDB item holds 400 KB).
pub const MAX_EVENTS: usize = 100;
pub const MAX_EVENT_BYTES: usize = 350_000;
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
const MAX_ID_LEN: usize = 200;

/// One agent event, as the agent sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: AgentEventKind,
    pub phone_number_id: String,
    /// The customer as Meta's webhook names them: the BSUID (`user_id`) when there is one, else
    /// the phone number (`wa_id`).
    pub customer: String,
    /// Unix seconds (a number) or an RFC 3339 date-time; the arrival time when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<serde_json::Value>,
    /// The agent could not help with this turn (counted by the consecutive-failures rule).
    #[serde(default)]
    pub failed: bool,
    /// `message`: what was sent to the customer; `reasoning`: the agent's thought.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `message`: the wamid Meta returned for the send, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wamid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<HandoffRequest>,
    /// Set by Baton alone: Meta told it (Conversation Routing), the agent did not post it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// What Meta told Baton, for an event the agent did not post itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// An echo of the thread owner's message (`standby` or `message_echoes`): the AI's reply.
    Echo,
    /// An echo of a message sent from the WhatsApp Business app (`smb_message_echoes`).
    BusinessApp,
    /// `control_passed`: the AI passed the thread to Baton.
    ControlPassed,
    /// `control_taken`: another partner took the thread from Baton.
    ControlTaken,
}

impl Origin {
    /// Who the transcript says wrote a message line.
    pub fn sender(self) -> &'static str {
        match self {
            Self::BusinessApp => "Business (WhatsApp Business app)",
            Self::Echo | Self::ControlPassed | Self::ControlTaken => "AI agent",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The agent's request for a person, with its own view of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandoffRequest {
    /// A short category, e.g. `billing`, `complaint`, `out_of_scope`, `customer_request`.
    pub category: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// `negative`, `neutral` or `positive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<String>,
    /// BCP-47, e.g. `es` or `pt-BR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

#[derive(Deserialize)]
struct Many<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

/// Why a request of agent events was refused (answered 400, nothing stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentEventError {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("the body holds no events")]
    Empty,
    #[error("the body holds {0} events; at most {MAX_EVENTS} per request")]
    TooMany(usize),
    #[error("events[{index}]: {problem}")]
    Invalid { index: usize, problem: String },
}

impl AgentEvent {
    pub fn parse(raw: &str) -> Result<Self, String> {
        serde_json::from_str(raw).map_err(|e| e.to_string())
    }

    fn check(&self) -> Result<(), String> {
        let id_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= MAX_ID_LEN
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._:-+=/@".contains(&b))
        };
        if !id_ok(&self.id) {
            return Err(format!(
                "id must be 1 to {MAX_ID_LEN} characters of letters, digits and ._:-+=/@"
            ));
        }
        if !id_ok(&self.phone_number_id) {
            return Err("phone_number_id must be the business number's id".into());
        }
        if !id_ok(&self.customer) {
            return Err("customer must be the customer's wa_id or user_id".into());
        }
        if self.origin.is_some() {
            return Err("origin is Baton's own field: leave it out".into());
        }
        let has_text = self.text.as_deref().is_some_and(|t| !t.trim().is_empty());
        match self.kind {
            AgentEventKind::Handover => Err("handover events come from Meta, not the agent".into()),
            AgentEventKind::Message | AgentEventKind::Reasoning if !has_text => {
                Err(format!("a {} event needs `text`", self.kind.as_str()))
            }
            AgentEventKind::ToolCall
                if self.tool.as_ref().is_none_or(|t| t.name.trim().is_empty()) =>
            {
                Err("a tool_call event needs `tool.name`".into())
            }
            AgentEventKind::Handoff => match &self.handoff {
                Some(h) if !h.category.trim().is_empty() && !h.reason.trim().is_empty() => {
                    if let Some(s) = &h.sentiment
                        && crate::domain::SentimentLabel::parse(s).is_none()
                    {
                        return Err(
                            "handoff.sentiment must be negative, neutral or positive".into()
                        );
                    }
                    Ok(())
                }
                _ => Err("a handoff event needs `handoff.category` and `handoff.reason`".into()),
            },
            _ => Ok(()),
        }
    }

    /// Unix seconds of the event, or `None` for "use the arrival time".
    fn unix_seconds(&self) -> Result<Option<i64>, String> {
        match &self.timestamp {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Number(n)) => n
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| Some(f as i64))
                .ok_or_else(|| "timestamp must be positive unix seconds".into()),
            Some(serde_json::Value::String(s)) => {
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                    .map(|t| Some(t.unix_timestamp()))
                    .map_err(|e| format!("timestamp is not RFC 3339: {e}"))
            }
            Some(_) => Err("timestamp must be unix seconds or an RFC 3339 string".into()),
        }
    }
}

/// Reads and checks a request of agent events; every event must be valid, or none is stored.
pub fn parse_events(
    body: &[u8],
    received_at_ms: i64,
) -> Result<Vec<AgentEventRecord>, AgentEventError> {
    let raws = match serde_json::from_slice::<Many<'_>>(body) {
        Ok(many) => many.events,
        Err(_) => {
            let one: &RawValue = serde_json::from_slice(body)
                .map_err(|e| AgentEventError::NotJson(e.to_string()))?;
            vec![one]
        }
    };
    if raws.is_empty() {
        return Err(AgentEventError::Empty);
    }
    if raws.len() > MAX_EVENTS {
        return Err(AgentEventError::TooMany(raws.len()));
    }
    let mut out = Vec::with_capacity(raws.len());
    for (index, raw) in raws.into_iter().enumerate() {
        let invalid = |problem: String| AgentEventError::Invalid { index, problem };
        if raw.get().len() > MAX_EVENT_BYTES {
            return Err(invalid(format!("larger than {MAX_EVENT_BYTES} bytes")));
        }
        let event = AgentEvent::parse(raw.get()).map_err(invalid)?;
        event.check().map_err(invalid)?;
        let timestamp = event.unix_seconds().map_err(invalid)?;
        out.push(AgentEventRecord {
            conversation: ConversationKey::new(
                event.phone_number_id.clone(),
                event.customer.clone(),
            ),
            event_id: event.id.clone(),
            kind: event.kind,
            timestamp: timestamp.unwrap_or(received_at_ms / 1000),
            received_at_ms,
            seq: index as u32,
            failed: event.failed,
            raw: raw.get().to_owned(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: i64 = 1_764_000_000_000;

    #[test]
    fn one_event_or_a_list_of_them() {
        let one = br#"{"id":"e1","type":"message","phone_number_id":"1","customer":"34600","text":"Hola","timestamp":1764000001}"#;
        let got = parse_events(one, NOW_MS).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].timestamp, 1_764_000_001);
        assert_eq!(got[0].conversation.partition(), "CONV#1#34600");
        let many = br#"{"events":[
            {"id":"e1","type":"reasoning","phone_number_id":"1","customer":"34600","text":"think"},
            {"id":"e2","type":"tool_call","phone_number_id":"1","customer":"34600","failed":true,
             "tool":{"name":"lookup_order","input":{"n":1},"output":null,"duration_ms":40},
             "timestamp":"2025-11-24T16:00:00Z"}]}"#;
        let got = parse_events(many, NOW_MS).unwrap();
        assert_eq!(got[0].timestamp, NOW_MS / 1000);
        assert_eq!(got[1].timestamp, 1_764_000_000);
        assert!(got[1].failed && !got[0].failed);
        assert_eq!((got[0].seq, got[1].seq), (0, 1));
        assert!(got[1].raw.contains("lookup_order"));
    }

    #[test]
    fn every_problem_is_named_with_its_index() {
        let cases: &[(&[u8], &str)] = &[
            (b"nope", "not JSON"),
            (br#"{"events":[]}"#, "no events"),
            (br#"{"id":"e1","type":"message","phone_number_id":"1","customer":"2"}"#, "needs `text`"),
            (br#"{"id":"e 1","type":"message","phone_number_id":"1","customer":"2","text":"x"}"#, "id must be"),
            (br#"{"id":"e1","type":"shout","phone_number_id":"1","customer":"2"}"#, "unknown variant"),
            (br#"{"id":"e1","type":"tool_call","phone_number_id":"1","customer":"2"}"#, "tool.name"),
            (br#"{"id":"e1","type":"handoff","phone_number_id":"1","customer":"2","handoff":{"category":"x","reason":""}}"#, "handoff.reason"),
            (br#"{"id":"e1","type":"handoff","phone_number_id":"1","customer":"2","handoff":{"category":"x","reason":"y","sentiment":"angry"}}"#, "sentiment"),
            (br#"{"id":"e1","type":"reasoning","phone_number_id":"1","customer":"2","text":"x","timestamp":"yesterday"}"#, "RFC 3339"),
            (br#"{"id":"e1","type":"message","phone_number_id":"1","customer":"2","text":"x","origin":"echo"}"#, "origin is Baton's own"),
            (br#"{"id":"e1","type":"handover","phone_number_id":"1","customer":"2"}"#, "come from Meta"),
        ];
        for (body, expected) in cases {
            let err = parse_events(body, NOW_MS).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{err:?} should mention {expected:?}"
            );
        }
        let many = format!(
            "{{\"events\":[{}]}}",
            vec![
                r#"{"id":"e","type":"reasoning","phone_number_id":"1","customer":"2","text":"x"}"#;
                101
            ]
            .join(",")
        );
        assert_eq!(
            parse_events(many.as_bytes(), NOW_MS).unwrap_err(),
            AgentEventError::TooMany(101)
        );
    }
}

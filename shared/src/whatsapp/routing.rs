//! Meta's Conversation Routing webhooks (autumn 2026): with routing on, the AI agent owns a thread
//! and Baton, as the business's standby and escalation partner, sees it through other fields:
//!
//! - `standby`: copies of the customer's messages, of the owner's outbound messages (echoes) and
//!   of their receipts, for threads Baton does not own;
//! - `message_echoes` and `smb_message_echoes`: echoes of what another sender sent (the latter
//!   from the WhatsApp Business app on a coexistence number);
//! - `messaging_handovers`: `control_passed` when the thread is passed to Baton, `control_taken`
//!   when another partner takes it from Baton.
//!
//! Shapes vary between Meta's reference, live traffic and older traffic, so everything here is
//! read leniently: unknown fields are ignored, numbers may be strings, and what cannot be read
//! is reported to the caller (which keeps the delivery for replay) rather than failing it.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::{Contact, Metadata, WaError};

pub const STANDBY: &str = "standby";
pub const MESSAGE_ECHOES: &str = "message_echoes";
pub const SMB_MESSAGE_ECHOES: &str = "smb_message_echoes";
pub const MESSAGING_HANDOVERS: &str = "messaging_handovers";

/// The `value` of a `standby` change: the business number, and one of customer messages (with
/// their contacts), echoes or statuses.
#[derive(Debug, Deserialize)]
pub struct StandbyValue<'a> {
    pub metadata: Metadata,
    #[serde(borrow)]
    pub standby: StandbyContent<'a>,
}

#[derive(Debug, Default, Deserialize)]
pub struct StandbyContent<'a> {
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default, borrow)]
    pub messages: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    pub statuses: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    pub message_echoes: Vec<&'a RawValue>,
    #[serde(default)]
    pub errors: Vec<WaError>,
}

/// The `value` of a `message_echoes` or `smb_message_echoes` change.
#[derive(Debug, Deserialize)]
pub struct EchoesValue<'a> {
    pub metadata: Metadata,
    #[serde(default, borrow)]
    pub message_echoes: Vec<&'a RawValue>,
}

/// An outbound message another sender made, as an echo tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct Echo {
    pub wamid: String,
    /// Unix seconds.
    pub timestamp: i64,
    /// The customer it went to: a phone number (or a business-scoped user id).
    pub to: String,
    /// The message type (`text`, `template`, `interactive`, `image`, …).
    pub kind: String,
    /// The message as a transcript line reads it.
    pub text: String,
}

/// Reads one echo: `standby` carries `{id, timestamp, message: <the send request>}`,
/// `smb_message_echoes` the message itself with `from`, `to`, `id`, `timestamp`, `type`.
pub fn parse_echo(raw: &str) -> Result<Echo, String> {
    let v: Value = serde_json::from_str(raw).map_err(|e| e.to_string())?;
    let wamid = text_of(&v["id"]).ok_or("the echo has no id")?;
    let timestamp = seconds(&v["timestamp"]).ok_or("the echo has no timestamp")?;
    let message = if v["message"].is_object() {
        &v["message"]
    } else {
        &v
    };
    let to = text_of(&message["to"])
        .or_else(|| text_of(&message["recipient"]))
        .ok_or_else(|| format!("echo {wamid} names no recipient"))?;
    let kind = text_of(&message["type"]).unwrap_or_else(|| "text".into());
    Ok(Echo {
        text: echo_text(&kind, message),
        wamid,
        timestamp,
        to: to.trim_start_matches('+').to_owned(),
        kind,
    })
}

/// A sent message as one line: the text, a template with its parameters, an interactive
/// message's body and choices, a file with its caption.
pub fn echo_text(kind: &str, message: &Value) -> String {
    let content = &message[kind];
    let str_at = |v: &Value, pointer: &str| {
        v.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match kind {
        "text" => str_at(content, "/body").unwrap_or_default(),
        "template" => {
            let name = str_at(content, "/name").unwrap_or_else(|| "?".into());
            let params: Vec<String> = content["components"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|c| c["parameters"].as_array().cloned().unwrap_or_default())
                .filter_map(|p| {
                    str_at(&p, "/text")
                        .or_else(|| str_at(&p, "/payload"))
                        .or_else(|| str_at(&p, "/currency/fallback_value"))
                        .or_else(|| str_at(&p, "/date_time/fallback_value"))
                        .or_else(|| text_of(&p["type"]).map(|t| format!("[{t}]")))
                })
                .collect();
            if params.is_empty() {
                format!("[template {name}]")
            } else {
                format!("[template {name}: {}]", params.join(" | "))
            }
        }
        "interactive" => {
            let body = str_at(content, "/body/text").unwrap_or_default();
            let mut choices: Vec<String> = Vec::new();
            for button in content
                .pointer("/action/buttons")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(t) = str_at(button, "/reply/title").or_else(|| str_at(button, "/title"))
                {
                    choices.push(t);
                }
            }
            for section in content
                .pointer("/action/sections")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for row in section["rows"].as_array().into_iter().flatten() {
                    if let Some(t) = str_at(row, "/title") {
                        choices.push(t);
                    }
                }
            }
            if let Some(t) = str_at(content, "/action/parameters/display_text") {
                choices.push(t);
            }
            match choices.is_empty() {
                true => body,
                false => format!("{body} [choices: {}]", choices.join(" | ")),
            }
        }
        "image" | "video" | "audio" | "document" | "sticker" => {
            let caption = str_at(content, "/caption");
            let name = str_at(content, "/filename");
            let mut line = format!("[{kind}");
            if let Some(n) = name {
                line.push_str(&format!(" {n}"));
            }
            line.push(']');
            if let Some(c) = caption {
                line.push_str(&format!(" {c}"));
            }
            line
        }
        "location" => format!(
            "[location {}]",
            str_at(content, "/name")
                .or_else(|| str_at(content, "/address"))
                .unwrap_or_else(|| format!("{}, {}", content["latitude"], content["longitude"]))
        ),
        "reaction" => format!(
            "[reacted {}]",
            str_at(content, "/emoji").unwrap_or_default()
        ),
        other => format!("[a {other} message]"),
    }
}

/// What a `messaging_handovers` change says happened to a thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandoverKind {
    /// The thread was passed to Baton.
    Passed,
    /// Another partner took the thread from Baton.
    Taken,
    /// A type Baton does not know.
    Other(String),
}

/// One `messaging_handovers` value, whichever of Meta's shapes it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    pub kind: HandoverKind,
    pub phone_number_id: String,
    pub display_phone_number: String,
    /// The customer: the phone number (or business-scoped user id).
    pub customer: String,
    /// Unix seconds.
    pub timestamp: i64,
    /// The role or app that had the thread (`ai_agent`, `meta_business_agent`, an app id).
    pub previous_owner: Option<String>,
    /// The role that has it now (`escalation`, …), when Meta says.
    pub new_owner: Option<String>,
    /// The caller's metadata: a reason code, a sentence, or a JSON string's `reason`.
    pub reason: Option<String>,
    /// Meta's AI summary of the conversation (`conversation_context`), when sent.
    pub summary: Option<String>,
}

impl Handover {
    /// The reason as a category Baton knows (`customer_request`, …) and the text to show: a
    /// known code maps to a category, anything else is shown as given.
    pub fn category_and_text(&self) -> (String, String) {
        let given = self.reason.clone().unwrap_or_default();
        let code = given.trim().to_ascii_lowercase().replace([' ', '-'], "_");
        let known = match code.as_str() {
            "customer_request"
            | "user_request"
            | "human_agent_requested"
            | "whatsapp_user_requested_human_agent" => {
                Some(("customer_request", "The customer asked for a person"))
            }
            "marketing_message" => Some(("marketing_message", "A marketing conversation")),
            "out_of_scope" => Some(("out_of_scope", "The AI agent cannot help with this")),
            "complaint" => Some(("complaint", "The customer has a complaint")),
            "billing" | "payment" => Some(("billing", "A billing question")),
            _ => None,
        };
        match known {
            Some((category, text)) => (category.to_owned(), format!("{text} ({given})")),
            None if given.trim().is_empty() => (
                "control_passed".to_owned(),
                "The AI agent passed the thread to Baton without a reason".to_owned(),
            ),
            None => ("control_passed".to_owned(), given),
        }
    }
}

/// Reads a `messaging_handovers` value.
pub fn parse_handover(raw: &str) -> Result<Handover, String> {
    let v: Value = serde_json::from_str(raw).map_err(|e| e.to_string())?;
    let kind_name = text_of(&v["type"]).ok_or("the handover has no type")?;
    let kind = match kind_name.as_str() {
        "control_passed" => HandoverKind::Passed,
        "control_taken" => HandoverKind::Taken,
        other => HandoverKind::Other(other.to_owned()),
    };
    let detail = &v[kind_name.as_str()];
    let phone_number_id = v
        .pointer("/recipient/phone_number_id")
        .or_else(|| v.pointer("/metadata/phone_number_id"))
        .and_then(text_of)
        .ok_or("the handover names no business number")?;
    let display_phone_number = v
        .pointer("/recipient/display_phone_number")
        .or_else(|| v.pointer("/metadata/display_phone_number"))
        .and_then(text_of)
        .unwrap_or_default();
    let customer = v
        .pointer("/sender/user_id")
        .or_else(|| v.pointer("/sender/phone_number"))
        .or_else(|| v.pointer("/sender/wa_id"))
        .and_then(text_of)
        .ok_or("the handover names no customer")?;
    let timestamp = seconds(&v["timestamp"]).ok_or("the handover has no timestamp")?;
    // The metadata is free text; older traffic carried a JSON string such as
    // {"reason":"MARKETING_MESSAGE"}.
    let reason = text_of(&detail["metadata"]).map(|m| {
        serde_json::from_str::<Value>(&m)
            .ok()
            .and_then(|j| text_of(&j["reason"]))
            .unwrap_or(m)
    });
    Ok(Handover {
        kind,
        phone_number_id,
        display_phone_number,
        customer: customer.trim_start_matches('+').to_owned(),
        timestamp,
        previous_owner: text_of(&detail["previous_owner_role"])
            .or_else(|| text_of(&detail["previous_owner_app_role"]))
            .or_else(|| text_of(&detail["previous_owner_app_id"])),
        new_owner: text_of(&detail["new_owner_role"]),
        reason,
        summary: detail
            .pointer("/conversation_context/summary/text")
            .and_then(text_of)
            .filter(|s| !s.trim().is_empty()),
    })
}

/// A string, or a number as text.
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Unix seconds given as a string or a number.
fn seconds(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_read_as_lines_in_either_shape() {
        let standby = r#"{"id":"wamid.E1","timestamp":"1750101000","message":{"messaging_product":"whatsapp","to":"16505551234","type":"text","text":{"body":"Shipped!"}}}"#;
        let e = parse_echo(standby).unwrap();
        assert_eq!(
            (
                e.wamid.as_str(),
                e.timestamp,
                e.to.as_str(),
                e.kind.as_str(),
                e.text.as_str()
            ),
            ("wamid.E1", 1_750_101_000, "16505551234", "text", "Shipped!")
        );
        let smb = r#"{"from":"15550783881","to":"16505551234","id":"wamid.S1","timestamp":1739321024,"type":"text","text":{"body":"From the phone"}}"#;
        assert_eq!(parse_echo(smb).unwrap().text, "From the phone");
        assert!(
            parse_echo(r#"{"timestamp":"1"}"#)
                .unwrap_err()
                .contains("no id")
        );
    }

    #[test]
    fn handover_metadata_in_every_shape() {
        let json = r#"{"type":"control_passed","timestamp":"5","sender":{"phone_number":"1650"},"recipient":{"phone_number_id":"p"},
            "control_passed":{"metadata":"{\"reason\":\"MARKETING_MESSAGE\"}"}}"#;
        let h = parse_handover(json).unwrap();
        assert_eq!(h.reason.as_deref(), Some("MARKETING_MESSAGE"));
        assert_eq!(h.category_and_text().0, "marketing_message");
        let free = r#"{"type":"control_passed","timestamp":5,"sender":{"phone_number":"1650"},"recipient":{"phone_number_id":"p"},
            "control_passed":{"metadata":"Order question the bot cannot answer"}}"#;
        let h = parse_handover(free).unwrap();
        assert_eq!(
            h.category_and_text(),
            (
                "control_passed".into(),
                "Order question the bot cannot answer".into()
            )
        );
        let unknown = r#"{"type":"control_requested","timestamp":"5","sender":{"phone_number":"1650"},"recipient":{"phone_number_id":"p"}}"#;
        assert_eq!(
            parse_handover(unknown).unwrap().kind,
            HandoverKind::Other("control_requested".into())
        );
        assert!(parse_handover(r#"{"type":"control_passed","timestamp":"5"}"#).is_err());
    }
}

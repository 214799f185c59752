//! What Baton needs to know about the portal before its first handoff, read once per container:
//! the ticket pipeline and stage, Baton's custom properties (created when missing, so set-up is
//! idempotent), the priority options, and the association type ids.

use serde_json::Value;
use tokio::time::Instant;

use crate::api::{self, NewProperty, Object, PropertyOption};
use crate::client::HubspotClient;
use crate::config::HubspotConfig;
use crate::error::HubspotError;

/// The contact property holding the customer's WhatsApp id (E.164, or the business-scoped user
/// id for customers without a phone number). Unique, so two handoffs can never create two
/// contacts for one customer.
pub const CONTACT_WHATSAPP_ID: &str = "baton_whatsapp_id";
/// The ticket property holding the handoff id. Unique: a second ticket for a handoff is refused.
pub const TICKET_HANDOFF_ID: &str = "baton_handoff_id";
pub const TICKET_REASON: &str = "baton_escalation_reason";
pub const TICKET_SENTIMENT: &str = "baton_sentiment";
pub const TICKET_LANGUAGE: &str = "baton_language";
pub const TICKET_WINDOW: &str = "baton_reply_window_closes_at";
pub const TICKET_SESSION: &str = "baton_session_url";
/// The ticket property a rep writes a WhatsApp reply into (see [`baton_shared::domain::REPLY_PROPERTY`]).
pub const TICKET_REPLY: &str = baton_shared::domain::REPLY_PROPERTY;

/// Default association type ids (HUBSPOT_DEFINED), checked against the labels API at set-up.
pub const TICKET_TO_CONTACT: u32 = 16;
pub const NOTE_TO_TICKET: u32 = 228;
pub const NOTE_TO_CONTACT: u32 = 202;

/// One custom property Baton creates.
struct PropertyDef {
    name: &'static str,
    label: &'static str,
    kind: &'static str,
    field: &'static str,
    unique: bool,
    description: &'static str,
}

const TICKET_PROPERTIES: &[PropertyDef] = &[
    PropertyDef {
        name: TICKET_HANDOFF_ID,
        label: "Baton handoff id",
        kind: "string",
        field: "text",
        unique: true,
        description: "The WhatsApp handoff this ticket was opened for (one ticket per handoff).",
    },
    PropertyDef {
        name: TICKET_REASON,
        label: "Escalation reason",
        kind: "string",
        field: "text",
        unique: false,
        description: "Why the AI agent handed the conversation to a person.",
    },
    PropertyDef {
        name: TICKET_SENTIMENT,
        label: "Customer sentiment",
        kind: "enumeration",
        field: "select",
        unique: false,
        description: "The customer's sentiment at handoff.",
    },
    PropertyDef {
        name: TICKET_LANGUAGE,
        label: "Customer language",
        kind: "string",
        field: "text",
        unique: false,
        description: "The customer's language (BCP-47).",
    },
    PropertyDef {
        name: TICKET_WINDOW,
        label: "WhatsApp reply window closes",
        kind: "datetime",
        field: "date",
        unique: false,
        description: "Free-form WhatsApp replies are possible until then (24 hours after the customer's last message).",
    },
    PropertyDef {
        name: TICKET_SESSION,
        label: "WhatsApp session",
        kind: "string",
        field: "text",
        unique: false,
        description: "The whole conversation: messages, the AI's reasoning and tool calls, media.",
    },
    PropertyDef {
        name: TICKET_REPLY,
        label: "Reply on WhatsApp",
        kind: "string",
        field: "textarea",
        unique: false,
        description: "Write your answer here and save: Baton sends it to the customer on WhatsApp (inside the 24-hour window; an approved template outside it), notes the outcome on the ticket and clears this field.",
    },
];

/// The sentiment property's options (its only enumeration).
const SENTIMENT_OPTIONS: &[PropertyOption] = &[
    PropertyOption {
        label: "Negative",
        value: "negative",
        display_order: 0,
        hidden: false,
    },
    PropertyOption {
        label: "Neutral",
        value: "neutral",
        display_order: 1,
        hidden: false,
    },
    PropertyOption {
        label: "Positive",
        value: "positive",
        display_order: 2,
        hidden: false,
    },
];

const CONTACT_PROPERTIES: &[PropertyDef] = &[PropertyDef {
    name: CONTACT_WHATSAPP_ID,
    label: "WhatsApp id",
    kind: "string",
    field: "text",
    unique: true,
    description: "The contact's WhatsApp number (E.164) or WhatsApp user id, as Baton matched it.",
}];

/// What the portal told us, cached for the container's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Portal {
    pub pipeline: String,
    pub stage: String,
    /// `hs_ticket_priority` options; empty when unknown (then any mapped value is sent).
    pub priorities: Vec<String>,
    /// Whether `source_type` offers `CHAT`.
    pub chat_source: bool,
    pub ticket_to_contact: u32,
    pub note_to_ticket: u32,
    pub note_to_contact: u32,
    /// The ids of every ticket stage whose state is CLOSED, in any pipeline: a ticket moved
    /// there ends its handoff.
    pub closed_stages: Vec<String>,
}

impl Portal {
    /// What the outbox assumes: HubSpot's documented defaults.
    pub fn assumed(cfg: &HubspotConfig) -> Self {
        Self {
            pipeline: cfg.pipeline.clone().unwrap_or_else(|| "0".into()),
            stage: cfg.stage.clone().unwrap_or_else(|| "1".into()),
            priorities: vec!["LOW".into(), "MEDIUM".into(), "HIGH".into()],
            chat_source: true,
            ticket_to_contact: TICKET_TO_CONTACT,
            note_to_ticket: NOTE_TO_TICKET,
            note_to_contact: NOTE_TO_CONTACT,
            // HubSpot's default support pipeline closes tickets in stage 4.
            closed_stages: vec!["4".into()],
        }
    }

    /// Reads (and where needed creates) everything; a handful of calls, once per container.
    pub async fn discover(
        client: &HubspotClient,
        cfg: &HubspotConfig,
        deadline: Instant,
    ) -> Result<Self, HubspotError> {
        let tickets =
            ensure_properties(client, Object::Tickets, TICKET_PROPERTIES, deadline).await?;
        ensure_properties(client, Object::Contacts, CONTACT_PROPERTIES, deadline).await?;
        let options = |name: &str| -> Vec<String> {
            tickets
                .iter()
                .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
                .and_then(|p| p.get("options"))
                .and_then(Value::as_array)
                .map(|o| {
                    o.iter()
                        .filter(|o| o.get("hidden").and_then(Value::as_bool) != Some(true))
                        .filter_map(|o| o.get("value").and_then(Value::as_str))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let (pipeline, stage, closed_stages) = pipeline_and_stage(client, cfg, deadline).await?;
        Ok(Self {
            pipeline,
            stage,
            closed_stages,
            priorities: options("hs_ticket_priority"),
            chat_source: options("source_type").iter().any(|o| o == "CHAT"),
            ticket_to_contact: type_id(
                client,
                Object::Tickets,
                Object::Contacts,
                TICKET_TO_CONTACT,
                deadline,
            )
            .await?,
            note_to_ticket: type_id(
                client,
                Object::Notes,
                Object::Tickets,
                NOTE_TO_TICKET,
                deadline,
            )
            .await?,
            note_to_contact: type_id(
                client,
                Object::Notes,
                Object::Contacts,
                NOTE_TO_CONTACT,
                deadline,
            )
            .await?,
        })
    }
}

/// Baton's properties not (yet) in the portal, as `object.name` (set-up creates them).
pub async fn missing_properties(
    client: &HubspotClient,
    deadline: Instant,
) -> Result<Vec<String>, HubspotError> {
    let mut missing = Vec::new();
    for (object, defs) in [
        (Object::Tickets, TICKET_PROPERTIES),
        (Object::Contacts, CONTACT_PROPERTIES),
    ] {
        let list = list_properties(client, object, deadline).await?;
        let names: Vec<&str> = list
            .iter()
            .filter_map(|p| p.get("name")?.as_str())
            .collect();
        missing.extend(
            defs.iter()
                .filter(|d| !names.contains(&d.name))
                .map(|d| format!("{}.{}", object.as_str(), d.name)),
        );
    }
    Ok(missing)
}

/// The object's properties, as HubSpot lists them.
async fn list_properties(
    client: &HubspotClient,
    object: Object,
    deadline: Instant,
) -> Result<Vec<Value>, HubspotError> {
    let answer = client
        .call(&api::list_properties("setup", object), deadline)
        .await?;
    if !answer.is_success() {
        return Err(answer.rejected("setup"));
    }
    Ok(answer
        .body
        .get("results")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

/// Lists the object's properties and creates Baton's missing ones; returns the list.
async fn ensure_properties(
    client: &HubspotClient,
    object: Object,
    defs: &[PropertyDef],
    deadline: Instant,
) -> Result<Vec<Value>, HubspotError> {
    let mut list = list_properties(client, object, deadline).await?;
    let group = if object == Object::Tickets {
        "ticketinformation"
    } else {
        "contactinformation"
    };
    for def in defs {
        let existing = list
            .iter()
            .find(|p| p.get("name").and_then(Value::as_str) == Some(def.name));
        if let Some(p) = existing {
            if def.unique && p.get("hasUniqueValue").and_then(Value::as_bool) != Some(true) {
                // Uniqueness cannot be added later; without it duplicates are only prevented by
                // Baton's own checks. Say so rather than fail every handoff.
                tracing::warn!(
                    object = object.as_str(),
                    property = def.name,
                    "the property exists without unique values; delete it in HubSpot to let Baton recreate it unique"
                );
            }
            continue;
        }
        let property = NewProperty {
            name: def.name,
            label: def.label,
            kind: def.kind,
            field_type: def.field,
            group_name: group,
            description: def.description,
            has_unique_value: def.unique,
            options: if def.kind == "enumeration" {
                SENTIMENT_OPTIONS.to_vec()
            } else {
                Vec::new()
            },
        };
        let created = client
            .call(&api::create_property("setup", object, &property), deadline)
            .await?;
        // 409: another container created it a moment ago.
        if !(created.is_success() || created.status == 409) {
            return Err(created.rejected("setup"));
        }
        tracing::info!(
            object = object.as_str(),
            property = def.name,
            "created a HubSpot property"
        );
        list.push(created.body);
    }
    Ok(list)
}

/// The pipeline and stage tickets go to (as configured, or the defaults) and every closed
/// stage; a configuration error names the valid ids.
pub async fn pipeline_and_stage(
    client: &HubspotClient,
    cfg: &HubspotConfig,
    deadline: Instant,
) -> Result<(String, String, Vec<String>), HubspotError> {
    let answer = client
        .call(&api::ticket_pipelines("setup"), deadline)
        .await?;
    if !answer.is_success() {
        return Err(answer.rejected("setup"));
    }
    let pipelines: Vec<&Value> = answer
        .body
        .get("results")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|p| p.get("archived").and_then(Value::as_bool) != Some(true))
                .collect()
        })
        .unwrap_or_default();
    let id_of = |v: &Value| v.get("id").and_then(Value::as_str).map(str::to_owned);
    let closed: Vec<String> = pipelines
        .iter()
        .filter_map(|p| p.get("stages").and_then(Value::as_array))
        .flatten()
        .filter(|s| s.pointer("/metadata/ticketState").and_then(Value::as_str) == Some("CLOSED"))
        .filter_map(&id_of)
        .collect();
    let pipeline = match &cfg.pipeline {
        Some(want) => *pipelines
            .iter()
            .find(|p| id_of(p).as_deref() == Some(want.as_str()))
            .ok_or_else(|| {
                HubspotError::config(
                    "setup",
                    format!(
                        "HUBSPOT_TICKET_PIPELINE {want:?} is not a ticket pipeline of this portal (ids: {})",
                        pipelines.iter().filter_map(|p| id_of(p)).collect::<Vec<_>>().join(", ")
                    ),
                )
            })?,
        // The default pipeline is "0"; else the first by display order.
        None => *pipelines
            .iter()
            .find(|p| id_of(p).as_deref() == Some("0"))
            .or_else(|| {
                pipelines
                    .iter()
                    .min_by_key(|p| p.get("displayOrder").and_then(Value::as_i64))
            })
            .ok_or_else(|| HubspotError::config("setup", "the portal has no ticket pipeline"))?,
    };
    let pipeline_id = id_of(pipeline).unwrap_or_default();
    let mut stages: Vec<&Value> = pipeline
        .get("stages")
        .and_then(Value::as_array)
        .map(|s| s.iter().collect())
        .unwrap_or_default();
    stages.sort_by_key(|s| s.get("displayOrder").and_then(Value::as_i64));
    let stage = match &cfg.stage {
        Some(want) => stages
            .iter()
            .find(|s| id_of(s).as_deref() == Some(want.as_str()))
            .and_then(|s| id_of(s))
            .ok_or_else(|| {
                HubspotError::config(
                    "setup",
                    format!(
                        "HUBSPOT_TICKET_STAGE {want:?} is not a stage of pipeline {pipeline_id} (ids: {})",
                        stages.iter().filter_map(|s| id_of(s)).collect::<Vec<_>>().join(", ")
                    ),
                )
            })?,
        None => stages
            .iter()
            .find(|s| {
                s.pointer("/metadata/ticketState").and_then(Value::as_str) == Some("OPEN")
            })
            .and_then(|s| id_of(s))
            .ok_or_else(|| {
                HubspotError::config(
                    "setup",
                    format!("pipeline {pipeline_id} has no open stage; set HUBSPOT_TICKET_STAGE"),
                )
            })?,
    };
    Ok((pipeline_id, stage, closed))
}

/// The unlabelled HUBSPOT_DEFINED association type from `from` to `to`, or `fallback`.
async fn type_id(
    client: &HubspotClient,
    from: Object,
    to: Object,
    fallback: u32,
    deadline: Instant,
) -> Result<u32, HubspotError> {
    let answer = client
        .call(&api::association_labels("setup", from, to), deadline)
        .await?;
    let found = answer
        .body
        .get("results")
        .and_then(Value::as_array)
        .and_then(|r| {
            r.iter().find(|l| {
                l.get("category").and_then(Value::as_str) == Some("HUBSPOT_DEFINED")
                    && l.get("label").is_none_or(|v| v.is_null() || v == "")
            })
        })
        .and_then(|l| l.get("typeId").and_then(Value::as_u64))
        .map(|id| id as u32);
    match found {
        Some(id) => {
            if id != fallback {
                tracing::warn!(
                    from = from.as_str(),
                    to = to.as_str(),
                    id,
                    documented = fallback,
                    "the portal's association type id differs from HubSpot's documentation; using the portal's"
                );
            }
            Ok(id)
        }
        None => {
            tracing::warn!(
                from = from.as_str(),
                to = to.as_str(),
                status = answer.status,
                "no association label found; using HubSpot's documented type id"
            );
            Ok(fallback)
        }
    }
}

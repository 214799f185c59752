//! What one verified delivery writes: the raw delivery, the conversations it touches, its
//! messages and statuses. Every record is keyed on WhatsApp's own ids, so writing the same
//! delivery twice can be detected item by item.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::whatsapp::WaError;

/// One conversation: a business number and one customer. The customer is the business-scoped user
/// id (BSUID) when WhatsApp sent one, else the phone number (`wa_id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConversationKey {
    pub phone_number_id: String,
    pub customer: String,
}

impl ConversationKey {
    pub fn new(phone_number_id: impl Into<String>, customer: impl Into<String>) -> Self {
        Self {
            phone_number_id: phone_number_id.into(),
            customer: customer.into(),
        }
    }

    /// The store's partition key for this conversation: `CONV#<phone_number_id>#<customer>`.
    pub fn partition(&self) -> String {
        format!("CONV#{}#{}", self.phone_number_id, self.customer)
    }
}

/// A delivery's id: the lowercase hex SHA-256 of its exact body, so a body Meta sends again is
/// recognised as the same delivery.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeliveryId(pub String);

impl DeliveryId {
    pub fn of(body: &[u8]) -> Self {
        use sha2::Digest;
        Self(hex::encode(sha2::Sha256::digest(body)))
    }
}

impl std::fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How far a delivery's body could be understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParseState {
    /// Every message was stored, and every status somebody reads: the items stand for the body,
    /// which is not kept.
    Parsed,
    /// Some items could not be read; they are listed in `problems` and the body can be replayed.
    Partial,
    /// The body could not be read at all; it is kept and can be replayed.
    Unparsed,
    /// Not a WhatsApp Business Account notification; kept, but nothing to replay.
    Ignored,
}

impl ParseState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Parsed => "parsed",
            Self::Partial => "partial",
            Self::Unparsed => "unparsed",
            Self::Ignored => "ignored",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "parsed" => Self::Parsed,
            "partial" => Self::Partial,
            "unparsed" => Self::Unparsed,
            "ignored" => Self::Ignored,
            _ => return None,
        })
    }

    /// Whether a later Baton version could get more out of the body.
    pub fn replayable(self) -> bool {
        matches!(self, Self::Partial | Self::Unparsed)
    }
}

/// The delivery exactly as Meta sent it, with what was understood of it.
#[derive(Debug, Clone, PartialEq)]
pub struct RawDelivery {
    pub id: DeliveryId,
    pub received_at_ms: i64,
    pub body: Bytes,
    pub state: ParseState,
    /// What could not be read, one line each; empty when everything was.
    pub problems: Vec<String>,
    /// `value.errors[]` that Meta reported for the account or app.
    pub errors: Vec<WaError>,
    /// `field` names of changes Baton does not handle (acknowledged and kept in the body).
    pub ignored_fields: Vec<String>,
    pub message_count: u32,
    pub status_count: u32,
}

/// A customer's inbound message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub conversation: ConversationKey,
    pub wamid: String,
    /// Meta's timestamp, unix seconds.
    pub timestamp: i64,
    /// The message `type` as sent.
    pub kind: String,
    pub received_at_ms: i64,
    /// Position in its delivery, to keep arrival order among equal timestamps.
    pub seq: u32,
    pub delivery_id: DeliveryId,
    /// The message object exactly as it appeared in the body.
    pub raw: String,
}

impl MessageRecord {
    /// Sorts the conversation's timeline: Meta's timestamp (second resolution), then arrival.
    pub fn order_key(&self) -> String {
        format!(
            "{:011}#{:013}#{:06}#{}",
            self.timestamp.max(0),
            self.received_at_ms.max(0),
            self.seq,
            self.wamid
        )
    }
}

/// The latest known status of a message the business sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusRecord {
    pub conversation: ConversationKey,
    pub wamid: String,
    pub status: String,
    /// See [`crate::whatsapp::StatusKind::rank`]: a status only replaces a lower rank.
    pub rank: u8,
    pub timestamp: i64,
    pub errors: Vec<WaError>,
    pub received_at_ms: i64,
    pub delivery_id: DeliveryId,
    pub raw: String,
}

/// A conversation: who the customer is and when they last wrote. A batch carries what its
/// delivery says about each conversation; the store merges that into what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub key: ConversationKey,
    pub display_phone_number: String,
    pub wa_id: Option<String>,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub profile_name: Option<String>,
    /// Unix seconds of the customer's latest inbound message; `None` when only statuses or
    /// system notices have been seen.
    pub last_inbound_at: Option<i64>,
}

impl Conversation {
    pub fn reply_window(&self) -> Option<super::ReplyWindow> {
        self.last_inbound_at
            .map(|t| super::ReplyWindow { last_inbound_at: t })
    }
}

/// Whether a batch comes fresh from Meta or is a stored delivery read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOrigin {
    Webhook,
    Replay,
}

/// Everything one delivery writes, merged so that no item appears twice.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryBatch {
    pub origin: BatchOrigin,
    pub delivery: RawDelivery,
    pub conversations: Vec<Conversation>,
    pub messages: Vec<MessageRecord>,
    pub statuses: Vec<StatusRecord>,
    /// What Conversation Routing told: the thread owner's replies (echoes) and handovers, in
    /// the timeline as the agent's own events would be.
    pub agent_events: Vec<AgentEventRecord>,
}

/// What a store did with a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WriteReport {
    /// False when this exact body had been stored before.
    pub delivery_new: bool,
    pub messages_new: u32,
    pub messages_duplicate: u32,
    pub statuses_applied: u32,
    /// Statuses not applied because an equal or later one was stored already.
    pub statuses_stale: u32,
    /// Echoes and handovers (Conversation Routing) stored for the first time.
    pub agent_events_new: u32,
    /// Round trips the store made (for DynamoDB: requests sent).
    pub requests: u32,
    /// Write capacity units the store reported consuming (DynamoDB's `ConsumedCapacity`; 0 for
    /// stores that do not meter writes). Writes refused by their condition are not reported.
    #[serde(skip)]
    pub write_units: u32,
}

impl WriteReport {
    /// For a body that is not kept (its items stand for it): new unless every item it carried
    /// was found stored already. One whose items nobody reads (statuses of the agent's messages)
    /// stored nothing and repeated nothing: new.
    pub fn settle_unkept_delivery(&mut self) {
        let new = self.messages_new + self.statuses_applied + self.agent_events_new;
        let repeated = self.messages_duplicate + self.statuses_stale;
        self.delivery_new = new > 0 || repeated == 0;
    }

    /// Adds what another write of the same batch did.
    pub fn add(&mut self, other: &Self) {
        self.delivery_new |= other.delivery_new;
        self.messages_new += other.messages_new;
        self.messages_duplicate += other.messages_duplicate;
        self.statuses_applied += other.statuses_applied;
        self.statuses_stale += other.statuses_stale;
        self.agent_events_new += other.agent_events_new;
        self.requests += other.requests;
        self.write_units += other.write_units;
    }
}

/// What the AI agent reported: its reply to the customer, its reasoning, a tool call, or a
/// request to hand the conversation to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentEventKind {
    Message,
    Reasoning,
    ToolCall,
    Handoff,
    /// Meta moved the thread away from Baton (Conversation Routing's `control_taken`).
    Handover,
}

impl AgentEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Reasoning => "reasoning",
            Self::ToolCall => "tool_call",
            Self::Handoff => "handoff",
            Self::Handover => "handover",
        }
    }
}

/// One event from the AI agent, in the conversation's timeline beside the customer's messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentEventRecord {
    pub conversation: ConversationKey,
    /// The agent's own id for the event: sending it again stores nothing new.
    pub event_id: String,
    pub kind: AgentEventKind,
    /// Unix seconds: the agent's timestamp, else the arrival time.
    pub timestamp: i64,
    pub received_at_ms: i64,
    /// Position in its request, to keep arrival order among equal timestamps.
    pub seq: u32,
    /// The agent marked this event as a failure (it could not help).
    pub failed: bool,
    /// The event object exactly as the agent sent it.
    pub raw: String,
}

impl AgentEventRecord {
    /// Sorts with the customer's messages: timestamp, then arrival. The `~` keeps an agent event
    /// after a message with the same timestamp and arrival millisecond.
    pub fn order_key(&self) -> String {
        format!(
            "{:011}#{:013}#{:06}#~{}",
            self.timestamp.max(0),
            self.received_at_ms.max(0),
            self.seq,
            self.event_id
        )
    }
}

/// One line of a conversation's timeline: a customer's message or an agent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimelineEntry {
    Message(MessageRecord),
    Agent(AgentEventRecord),
}

impl TimelineEntry {
    pub fn order_key(&self) -> String {
        match self {
            Self::Message(m) => m.order_key(),
            Self::Agent(e) => e.order_key(),
        }
    }

    pub fn timestamp(&self) -> i64 {
        match self {
            Self::Message(m) => m.timestamp,
            Self::Agent(e) => e.timestamp,
        }
    }
}

/// What a store did with a request of agent events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AgentWriteReport {
    pub events_new: u32,
    pub events_duplicate: u32,
    /// As [`WriteReport::write_units`].
    #[serde(skip)]
    pub write_units: u32,
}

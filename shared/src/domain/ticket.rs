//! What happens on a handoff's ticket after it is opened: the customer's follow-ups, the rep's
//! replies from HubSpot, WhatsApp's word on a reply that failed, the ticket's stage changes, and
//! the AI agent being told who owns the conversation.
//!
//! Each is a [`TicketEvent`], stored once in the handoff's own partition (its id is the
//! idempotency key: a redelivered message, a HubSpot event delivered three times or a repeated
//! status is one event) and carried by the stream to the HubSpot function, which works through it
//! step by step and keeps its progress in an [`EventTrail`] beside it, as it does for the handoff.

/// The ticket property a rep writes a WhatsApp reply into: setting it on the ticket (by hand or
/// from a workflow) is the gesture that sends; Baton clears it once the reply is handled. The
/// webhook reads it in HubSpot's events; the HubSpot function creates and clears it.
pub const REPLY_PROPERTY: &str = "baton_whatsapp_reply";

use serde::{Deserialize, Serialize};

use super::records::{AgentEventRecord, ConversationKey, MessageRecord};
use super::trail::{FileStep, Step, TrailError, TrailStatus};
use super::{HandoffRecord, MediaRecord};
use crate::whatsapp::WaError;

/// Who answers the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// A rep replied from the ticket: the AI agent must stay quiet.
    Human,
    /// The ticket was closed: the AI agent may answer again.
    Agent,
}

impl Owner {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Human => "human",
            Self::Agent => "agent",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TicketEventKind {
    /// A customer message that arrived after the handoff's transcript was written.
    FollowUp {
        message: Box<MessageRecord>,
        /// The message's file, copied as the handoff's files are.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media: Option<Box<MediaRecord>>,
        /// The reply window this message opened (unix seconds).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_window_closes_at: Option<i64>,
    },
    /// A rep's reply, set on the ticket in HubSpot.
    Reply {
        ticket_id: String,
        text: String,
        /// When HubSpot says the rep made the change (ms).
        occurred_at_ms: i64,
    },
    /// WhatsApp could not deliver a reply Baton sent (a `failed` status).
    ReplyFailed {
        /// The reply's event id.
        reply: String,
        wamid: String,
        errors: Vec<WaError>,
        /// The status's timestamp (unix seconds).
        at: i64,
    },
    /// The ticket moved to another stage; `None` when it was deleted.
    Stage {
        ticket_id: String,
        stage: Option<String>,
        occurred_at_ms: i64,
    },
    /// Tell the AI agent who answers the customer now.
    Ownership { owner: Owner },
    /// A customer's file the handoff (or a follow-up) stopped waiting for, now copied, or given
    /// up on: it goes on the ticket with a note.
    FileLanded { media: Box<MediaRecord> },
    /// Meta's Conversation Routing gave the thread to another partner (`control_taken`).
    ThreadTaken {
        /// What Meta said, as a line.
        text: String,
        /// Unix seconds.
        at: i64,
    },
}

impl TicketEventKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::FollowUp { .. } => "follow_up",
            Self::Reply { .. } => "reply",
            Self::ReplyFailed { .. } => "reply_failed",
            Self::Stage { .. } => "stage",
            Self::Ownership { .. } => "ownership",
            Self::FileLanded { .. } => "file_landed",
            Self::ThreadTaken { .. } => "thread_taken",
        }
    }
}

/// One event on a handoff's ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketEvent {
    pub handoff_id: String,
    /// Unique within the handoff, and the same every time the same thing is reported.
    pub id: String,
    pub conversation: ConversationKey,
    pub received_at_ms: i64,
    #[serde(flatten)]
    pub kind: TicketEventKind,
}

impl TicketEvent {
    /// The event for a customer message after the handoff.
    pub fn follow_up(
        handoff: &HandoffRecord,
        message: &MessageRecord,
        media: Option<MediaRecord>,
        reply_window_closes_at: Option<i64>,
        now_ms: i64,
    ) -> Self {
        Self {
            handoff_id: handoff.id.clone(),
            id: Self::follow_up_id(&message.order_key()),
            conversation: handoff.conversation.clone(),
            received_at_ms: now_ms,
            kind: TicketEventKind::FollowUp {
                message: Box::new(message.clone()),
                media: media.map(Box::new),
                reply_window_closes_at,
            },
        }
    }

    /// The follow-up event's id for the message with `order_key`.
    pub fn follow_up_id(order_key: &str) -> String {
        format!("fu#{order_key}")
    }

    /// The event for a file the handoff or a follow-up went on without: one per file.
    pub fn file_landed(handoff: &HandoffRecord, media: MediaRecord, now_ms: i64) -> Self {
        Self {
            handoff_id: handoff.id.clone(),
            id: format!("file#{}", media.wamid),
            conversation: handoff.conversation.clone(),
            received_at_ms: now_ms,
            kind: TicketEventKind::FileLanded {
                media: Box::new(media),
            },
        }
    }

    /// The event for Meta's `control_taken` (`agent_event`, the handover as stored) on an open
    /// handoff.
    pub fn thread_taken(
        handoff: &HandoffRecord,
        agent_event: &AgentEventRecord,
        text: String,
        now_ms: i64,
    ) -> Self {
        Self {
            handoff_id: handoff.id.clone(),
            id: format!("taken#{}", agent_event.order_key()),
            conversation: handoff.conversation.clone(),
            received_at_ms: now_ms,
            kind: TicketEventKind::ThreadTaken {
                text,
                at: agent_event.timestamp,
            },
        }
    }

    /// The id of the ownership event telling the agent `owner` answers now: one per handoff.
    pub fn ownership_id(owner: Owner) -> String {
        format!("own#{}", owner.as_str())
    }

    /// What a reply carries to WhatsApp (`biz_opaque_callback_data`), so that its statuses name
    /// the handoff and the reply even when they arrive before Baton saved the message id.
    pub fn callback_data(&self) -> String {
        format!("{CALLBACK_PREFIX}{}|{}", self.handoff_id, self.id)
    }
}

/// The start of every `biz_opaque_callback_data` Baton sends.
pub const CALLBACK_PREFIX: &str = "baton|";

/// Reads `biz_opaque_callback_data` back: (handoff id, reply event id).
pub fn parse_callback_data(data: &str) -> Option<(&str, &str)> {
    let rest = data.strip_prefix(CALLBACK_PREFIX)?;
    let (handoff, event) = rest.split_once('|')?;
    (handoff.starts_with("ho_") && !event.is_empty()).then_some((handoff, event))
}

/// How far the HubSpot function got with one ticket event; each named step's outcome is kept as
/// soon as it exists, so a retry resumes instead of repeating.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventTrail {
    pub status: TrailStatus,
    pub steps: Vec<FileStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<TrailError>,
    pub runs: u32,
    pub updated_at_ms: i64,
}

impl EventTrail {
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps
            .iter()
            .find(|f| f.source == name)
            .map(|f| &f.step)
    }

    pub fn is_finished(&self, name: &str) -> bool {
        self.step(name).is_some_and(Step::is_finished)
    }

    pub fn set(&mut self, name: &str, step: Step) {
        match self.steps.iter_mut().find(|f| f.source == name) {
            Some(f) => f.step = step,
            None => self.steps.push(FileStep {
                source: name.to_owned(),
                step,
            }),
        }
    }
}

/// Which handoff a HubSpot ticket belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketLink {
    pub ticket_id: String,
    pub handoff_id: String,
    pub conversation: ConversationKey,
    pub episode: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_data_names_the_handoff_and_the_reply() {
        assert_eq!(
            parse_callback_data("baton|ho_0123|rp#1#2#3"),
            Some(("ho_0123", "rp#1#2#3"))
        );
        assert_eq!(parse_callback_data("other|ho_1|x"), None);
        assert_eq!(parse_callback_data("baton|ho_1|"), None);
        assert_eq!(parse_callback_data("baton|x|y"), None);
    }

    #[test]
    fn steps_are_kept_once_by_name() {
        let mut t = EventTrail::default();
        t.set("note", Step::done("1", "created", 1));
        t.set("note", Step::done("2", "created", 2));
        assert_eq!(t.steps.len(), 1);
        assert_eq!(t.step("note").unwrap().id.as_deref(), Some("2"));
        assert!(t.is_finished("note"));
        assert!(!t.is_finished("send"));
    }
}

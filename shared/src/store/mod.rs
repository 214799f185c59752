//! Storage ports (small traits the functions depend on) and the adapter the functions run on,
//! DynamoDB. `baton-local` adds a redb adapter of its own (`baton_local::redb_store`); both pass
//! the same contract suite (`baton_testkit::store_contract`).

use async_trait::async_trait;

use crate::retry::{Classify, ErrorClass};

use crate::domain::{
    AgentEventRecord, AgentWriteReport, Claim, Conversation, ConversationKey, DeliveryBatch,
    DeliveryId, EventTrail, HandoffRecord, HubspotTrail, MediaRecord, MessageRecord, RawDelivery,
    StatusRecord, TicketEvent, TicketLink, TimelineEntry, WriteReport,
};

pub mod dynamodb;

pub use dynamodb::{DynamoDbStore, RequestCounter, change_from_image, change_from_item};

/// A storage failure, classified once: retryable failures answer 5xx so Meta delivers again.
/// Each keeps the error that caused it, when there was one, as its source.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or was overloaded; trying again may succeed.
    #[error("the store is unavailable: {message}")]
    Unavailable {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
    /// The store refused the request as invalid; trying again will not help.
    #[error("the store refused the request: {message}")]
    Rejected {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
    /// An item in the store could not be read back.
    #[error("a stored item is unreadable: {message}")]
    Corrupt {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
}

/// The cause an error keeps.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl StoreError {
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable {
            message: message.into(),
            source: None,
        }
    }

    pub fn rejected(message: impl Into<String>) -> Self {
        Self::Rejected {
            message: message.into(),
            source: None,
        }
    }

    pub fn corrupt(message: impl Into<String>) -> Self {
        Self::Corrupt {
            message: message.into(),
            source: None,
        }
    }

    /// A refusal caused by `e` (an item that cannot be encoded, say).
    pub fn rejected_from(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::rejected(e.to_string()).with_source(e)
    }

    /// An unreadable item, as `e` found.
    pub fn corrupt_from(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::corrupt(e.to_string()).with_source(e)
    }

    /// The same failure, keeping `e` as its cause.
    pub fn with_source(mut self, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        let (Self::Unavailable { source, .. }
        | Self::Rejected { source, .. }
        | Self::Corrupt { source, .. }) = &mut self;
        *source = Some(Box::new(e));
        self
    }
}

impl Classify for StoreError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::Unavailable { .. } => ErrorClass::Retry,
            Self::Rejected { .. } => ErrorClass::Park,
            Self::Corrupt { .. } => ErrorClass::Drop,
        }
    }
}

/// One page of a conversation's messages in timeline order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessagePage {
    pub messages: Vec<MessageRecord>,
    /// Pass back as `after` for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// Writes what a delivery produced, item by item idempotently: the raw delivery, each message
/// and status once, conversations' reply windows only forward, statuses only forward.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    async fn write_batch(&self, batch: &DeliveryBatch) -> Result<WriteReport, StoreError>;
}

/// Reads conversations, their timeline and their outbound statuses.
#[async_trait]
pub trait ConversationReader: Send + Sync {
    async fn conversation(&self, key: &ConversationKey)
    -> Result<Option<Conversation>, StoreError>;
    /// Messages and agent events in timeline order (Meta's timestamp, then arrival), `limit` at
    /// most, starting after the cursor a previous page returned.
    async fn timeline_page(
        &self,
        key: &ConversationKey,
        after: Option<&str>,
        limit: usize,
    ) -> Result<TimelinePage, StoreError>;
    /// The timeline's messages alone, `limit` at most, after the cursor a previous page returned.
    async fn messages_page(
        &self,
        key: &ConversationKey,
        after: Option<&str>,
        limit: usize,
    ) -> Result<MessagePage, StoreError> {
        let mut page = MessagePage::default();
        let mut cursor = after.map(str::to_owned);
        loop {
            let timeline = self.timeline_page(key, cursor.as_deref(), limit).await?;
            for entry in timeline.entries {
                if let TimelineEntry::Message(m) = entry {
                    if page.messages.len() == limit {
                        page.next = page.messages.last().map(MessageRecord::order_key);
                        return Ok(page);
                    }
                    page.messages.push(m);
                }
            }
            match timeline.next {
                Some(next) => cursor = Some(next),
                None => return Ok(page),
            }
        }
    }
    async fn status(
        &self,
        key: &ConversationKey,
        wamid: &str,
    ) -> Result<Option<StatusRecord>, StoreError>;
}

/// The raw deliveries, for inspection and replay.
#[async_trait]
pub trait DeliveryLog: Send + Sync {
    async fn delivery(&self, id: &DeliveryId) -> Result<Option<RawDelivery>, StoreError>;
    /// Deliveries that could not be read completely, oldest first.
    async fn replayable_deliveries(&self, limit: usize) -> Result<Vec<DeliveryId>, StoreError>;
}

/// The AI agent's events, each stored once (by conversation and event id) in the timeline.
#[async_trait]
pub trait AgentEventStore: Send + Sync {
    async fn write_agent_events(
        &self,
        events: &[AgentEventRecord],
    ) -> Result<AgentWriteReport, StoreError>;
}

/// One page of a conversation's timeline: messages and agent events in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimelinePage {
    pub entries: Vec<TimelineEntry>,
    /// Pass back as `after` for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// What the handoff function reads and writes.
#[async_trait]
pub trait HandoffStore: ConversationReader + TicketStore {
    /// Counts an agent event towards the run of consecutive failures and returns the run's length.
    /// Each event (by its order key) is counted once, and only in order.
    async fn agent_outcome(
        &self,
        key: &ConversationKey,
        order_key: &str,
        failed: bool,
    ) -> Result<u32, StoreError>;
    /// The conversation's open handoff episode, if one is open.
    async fn open_episode(&self, key: &ConversationKey) -> Result<Option<u32>, StoreError>;
    /// Opens a handoff episode for the conversation unless one is open; either way says which.
    async fn claim_handoff(
        &self,
        key: &ConversationKey,
        trigger: &str,
    ) -> Result<Claim, StoreError>;
    async fn media(
        &self,
        key: &ConversationKey,
        wamid: &str,
    ) -> Result<Option<MediaRecord>, StoreError>;
    /// Stores a media record; a copied file's record is never replaced by a failed one.
    async fn save_media(&self, record: &MediaRecord) -> Result<(), StoreError>;
    async fn handoff(&self, id: &str) -> Result<Option<HandoffRecord>, StoreError>;
    /// Stores the handoff once; false when it was stored already.
    async fn save_handoff(&self, record: &HandoffRecord) -> Result<bool, StoreError>;
}

/// What the HubSpot function reads and writes: the status trail kept on each handoff record.
#[async_trait]
pub trait TrailStore: Send + Sync {
    async fn trail(&self, handoff_id: &str) -> Result<Option<HubspotTrail>, StoreError>;
    /// Replaces the trail on the handoff record, which must exist.
    async fn save_trail(&self, handoff_id: &str, trail: &HubspotTrail) -> Result<(), StoreError>;
    /// Handoffs whose trail is parked or retrying, `limit` at most: what a replay runs again.
    async fn unfinished_handoffs(&self, limit: usize) -> Result<Vec<String>, StoreError>;
}

/// What happens on a handoff's ticket after it is opened: its events (follow-ups, replies,
/// failures, stage changes, ownership) each stored once with the progress made on it, which
/// handoff a ticket belongs to, and the end of the conversation's episode.
#[async_trait]
pub trait TicketStore: Send + Sync {
    /// Stores the event once (by handoff and event id); false when it was stored already.
    async fn save_ticket_event(&self, event: &TicketEvent) -> Result<bool, StoreError>;
    /// One event and the progress made on it.
    async fn ticket_event(
        &self,
        handoff_id: &str,
        id: &str,
    ) -> Result<Option<(TicketEvent, EventTrail)>, StoreError>;
    /// Every event of the handoff in id order, with the progress made on each.
    async fn ticket_events(
        &self,
        handoff_id: &str,
    ) -> Result<Vec<(TicketEvent, EventTrail)>, StoreError>;
    /// Replaces the event's progress; the event must exist.
    async fn save_event_trail(
        &self,
        handoff_id: &str,
        id: &str,
        trail: &EventTrail,
    ) -> Result<(), StoreError>;
    /// Events whose progress is parked or retrying, as (handoff id, event id), `limit` at most:
    /// what a replay runs again.
    async fn unfinished_events(&self, limit: usize) -> Result<Vec<(String, String)>, StoreError>;
    /// Remembers which handoff a ticket belongs to.
    async fn link_ticket(&self, link: &TicketLink) -> Result<(), StoreError>;
    async fn ticket_link(&self, ticket_id: &str) -> Result<Option<TicketLink>, StoreError>;
    /// Ends the conversation's handoff episode if `episode` is the open one; true when it did.
    /// The next request for a person opens a new episode.
    async fn close_episode(&self, key: &ConversationKey, episode: u32) -> Result<bool, StoreError>;
}

/// Everything the webhook function needs from storage.
pub trait Store:
    DeliveryStore + ConversationReader + DeliveryLog + AgentEventStore + TicketStore
{
}
impl<T: DeliveryStore + ConversationReader + DeliveryLog + AgentEventStore + TicketStore> Store
    for T
{
}

/// Everything the HubSpot function reads and writes after a handoff: its record, the
/// conversation (for the reply window), the ticket's events.
pub trait AfterStore: HandoffStore + TrailStore {}
impl<T: HandoffStore + TrailStore> AfterStore for T {}

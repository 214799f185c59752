//! Storage ports (small traits the functions depend on) and their adapters: DynamoDB for AWS and
//! an embedded redb database for `baton-local`. Both pass the same contract suite
//! ([`contract`], behind the `test-support` feature).

use async_trait::async_trait;

use crate::domain::{
    Conversation, ConversationKey, DeliveryBatch, DeliveryId, MessageRecord, RawDelivery,
    StatusRecord, WriteReport,
};

#[cfg(feature = "test-support")]
pub mod contract;
pub mod dynamodb;
pub mod embedded;

pub use dynamodb::{DynamoDbStore, RequestCounter};
pub use embedded::EmbeddedStore;

/// A storage failure, classified once: retryable failures answer 5xx so Meta delivers again.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or was overloaded; trying again may succeed.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The store refused the request as invalid; trying again will not help.
    #[error("the store refused the request: {0}")]
    Rejected(String),
    /// An item in the store could not be read back.
    #[error("a stored item is unreadable: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
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
    /// Messages in timeline order (Meta's timestamp, then arrival), `limit` at most, starting
    /// after the cursor a previous page returned.
    async fn messages_page(
        &self,
        key: &ConversationKey,
        after: Option<&str>,
        limit: usize,
    ) -> Result<MessagePage, StoreError>;
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

/// Everything the webhook function needs from storage.
pub trait Store: DeliveryStore + ConversationReader + DeliveryLog {}
impl<T: DeliveryStore + ConversationReader + DeliveryLog> Store for T {}

//! Signed bodies Baton could not store as items, kept whole with their problem so
//! `baton-local replay` can read them again with a later Baton: nothing a sender signed is lost.

use baton_shared::domain::{
    BatchOrigin, DeliveryBatch, DeliveryId, ParseState, RawDelivery, WriteReport,
};
use baton_shared::store::{Store, StoreError};
use bytes::Bytes;

/// Problems of a kept HubSpot-events body start with this, so replay knows what it is.
pub const HUBSPOT_PROBLEM: &str = "hubspot events: ";

/// Problems of a kept agent-events body start with this, so replay knows what it is.
pub const AGENT_PROBLEM: &str = "agent events: ";

/// Keeps a signed body that could not be read, with its problem, for replay.
pub async fn keep_body(
    store: &dyn Store,
    body: Bytes,
    now: i64,
    problem: String,
) -> Result<(), StoreError> {
    let delivery = RawDelivery {
        id: DeliveryId::of(&body),
        received_at_ms: now,
        body,
        state: ParseState::Unparsed,
        problems: vec![problem],
        errors: Vec::new(),
        ignored_fields: Vec::new(),
        message_count: 0,
        status_count: 0,
    };
    store
        .write_batch(&alone(delivery, BatchOrigin::Webhook))
        .await
        .map(|_| ())
}

/// Stores the raw delivery alone, marked partial with the store's reason, for a later replay.
pub async fn keep_for_replay(
    store: &dyn Store,
    batch: DeliveryBatch,
    reason: &str,
) -> Result<(DeliveryBatch, WriteReport), StoreError> {
    tracing::error!(delivery = %batch.delivery.id, error = %reason,
        "the store refused the delivery's items; keeping the body for replay");
    let mut delivery = batch.delivery;
    delivery.state = ParseState::Partial;
    delivery
        .problems
        .push(format!("the store refused its items: {reason}"));
    let mut only = alone(delivery, BatchOrigin::Webhook);
    let mut report = store.write_batch(&only).await?;
    if !report.delivery_new {
        // Stored before by an attempt that got further: mark that one for replay.
        only.origin = BatchOrigin::Replay;
        report = store.write_batch(&only).await?;
    }
    Ok((only, report))
}

/// Stores a kept body's new state after a replay (read now, or still not).
pub async fn rewrite_kept(store: &dyn Store, raw: RawDelivery) -> Result<(), StoreError> {
    store
        .write_batch(&alone(raw, BatchOrigin::Replay))
        .await
        .map(|_| ())
}

/// A batch of the raw delivery and nothing else.
fn alone(delivery: RawDelivery, origin: BatchOrigin) -> DeliveryBatch {
    DeliveryBatch {
        origin,
        delivery,
        conversations: Vec::new(),
        messages: Vec::new(),
        statuses: Vec::new(),
        agent_events: Vec::new(),
    }
}

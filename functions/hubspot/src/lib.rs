//! The HubSpot function: a DynamoDB stream consumer of new handoff records and ticket events.
//! Each handoff becomes a contact (found or created), a ticket, its files and a handoff note in
//! HubSpot, exactly once ([`handoff`]); each ticket event (a follow-up, a rep's reply, a failed
//! send, a close, who owns the conversation) is carried out on its ticket ([`events`]). A run that
//! fails in a way a retry could fix is reported as the batch's failure and the records after it
//! wait for that retry; one HubSpot refuses is parked on its trail with the reason and the batch
//! goes on.
//!
//! Where things are: every HubSpot path and body in [`api`]; sending, limits and retries in
//! [`client`] over a [`transport`] (HTTP, or the [`outbox`]); creates that happen once in
//! [`exactly_once`]; the portal's set-up in [`portal`]; the text reps read in [`content`].

use std::ops::Deref;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use baton_shared::domain::{Change, HandoffRecord, TicketEvent};
use baton_shared::observe::{self, metric};
use baton_shared::retry::Classify as _;
use baton_shared::stream::{self, RecordHandler, RecordOutcome};
use tokio::time::Instant;
use tracing::Instrument;

pub mod agent_webhook;
pub mod api;
pub mod client;
pub mod config;
pub mod contact;
pub mod content;
pub mod deliverer;
pub mod error;
mod events;
pub mod exactly_once;
pub mod graph_send;
pub mod handoff;
pub mod outbox;
pub mod portal;
pub mod replay;
pub mod trail;
pub mod transport;

pub use client::HubspotClient;
pub use config::HubspotConfig;
pub use deliverer::{Deliverer, EVENT_RETRIES};
pub use error::HubspotError;
pub use events::MAX_SEND_TRIES;
pub use trail::{Delivered, EventDone};

/// The item types whose INSERTs invoke the function: template.yaml's `FilterCriteria`.
pub const FILTERED_ITEM_TYPES: &[&str] = &["handoff", "ticket_event"];

/// Whether Lambda's event source mapping would hand `record` to the function.
pub fn passes_filter(record: &EventRecord) -> bool {
    stream::passes_filter(record, FILTERED_ITEM_TYPES)
}

/// Processes one record: a handoff or a ticket event.
pub async fn process_record(
    deliverer: &Deliverer,
    record: &EventRecord,
    deadline: Instant,
) -> RecordOutcome {
    match stream::change_of(record) {
        Ok(Some(Change::Handoff(h))) => deliver(deliverer, &h, deadline).await,
        Ok(Some(Change::TicketEvent(e))) => ticket_event(deliverer, &e, deadline).await,
        Ok(_) => RecordOutcome::Skipped,
        Err(e) => RecordOutcome::Dropped(e.to_string()),
    }
}

async fn deliver(
    deliverer: &Deliverer,
    handoff: &HandoffRecord,
    deadline: Instant,
) -> RecordOutcome {
    let span = tracing::info_span!("handoff", handoff_id = %handoff.id);
    match deliverer.deliver(handoff, deadline).instrument(span).await {
        Ok(d) => {
            observe::count(
                match &d {
                    Delivered::Done(_) => metric::HANDOFFS_DELIVERED,
                    Delivered::Parked(_) => metric::HANDOFFS_PARKED,
                },
                1,
            );
            RecordOutcome::Done
        }
        Err(e) => failure(&e),
    }
}

async fn ticket_event(
    deliverer: &Deliverer,
    event: &TicketEvent,
    deadline: Instant,
) -> RecordOutcome {
    let span = tracing::info_span!("ticket_event", handoff_id = %event.handoff_id, kind = event.kind.as_str());
    match deliverer
        .ticket_event(event, deadline)
        .instrument(span)
        .await
    {
        Ok(done) => {
            observe::count(
                match &done {
                    EventDone::Done(_) => metric::TICKET_EVENTS_DONE,
                    EventDone::Parked(_) => metric::TICKET_EVENTS_PARKED,
                },
                1,
            );
            RecordOutcome::Done
        }
        Err(e) => failure(&e),
    }
}

/// A run that failed: retried (the batch stops here) or dropped, and counted.
fn failure(e: &HubspotError) -> RecordOutcome {
    observe::count(metric::HUBSPOT_FAILURES, 1);
    if e.is_retryable() {
        RecordOutcome::Retry(e.log_summary())
    } else {
        RecordOutcome::Dropped(e.log_summary())
    }
}

/// Handles one batch, in order, stopping at the first record worth retrying.
pub async fn handle_batch(
    deliverer: &Deliverer,
    event: Event,
    deadline: Instant,
) -> DynamoDbEventResponse {
    stream::process_by_partition(&event, &Invocation::new(deliverer, deadline)).await
}

/// One invocation's work: records handled until the invocation's deadline, by the deliverer
/// `D` points to (borrowed, or shared across invocations).
pub struct Invocation<D> {
    deliverer: D,
    deadline: Instant,
}

impl<D> Invocation<D> {
    pub fn new(deliverer: D, deadline: Instant) -> Self {
        Self {
            deliverer,
            deadline,
        }
    }
}

impl<D: Deref<Target = Deliverer> + Send + Sync> RecordHandler for Invocation<D> {
    async fn handle(&self, record: &EventRecord) -> RecordOutcome {
        process_record(&self.deliverer, record, self.deadline).await
    }
}

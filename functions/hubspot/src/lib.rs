//! The HubSpot function: a DynamoDB stream consumer of new handoff records. Each one becomes a
//! contact (found or created), a ticket, its files and a handoff note in HubSpot, exactly once
//! ([`deliver`]). A handoff that fails in a way a retry could fix is reported as the batch's
//! failure (`ReportBatchItemFailures`) and the records after it wait for that retry; one HubSpot
//! refuses is parked on its trail with the reason and the batch goes on.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use baton_shared::domain::Change;
use baton_shared::observe::{self, metric};
use baton_shared::store::change_from_image;
use tokio::time::Instant;
use tracing::Instrument;

pub mod after;
pub mod agent_webhook;
pub mod client;
pub mod config;
pub mod contact;
pub mod content;
pub mod deliver;
pub mod error;
pub mod graph_send;
pub mod outbox;
pub mod setup;
pub mod transport;

pub use after::EventDone;
pub use client::HubspotClient;
pub use config::HubspotConfig;
pub use deliver::{Delivered, Deliverer};
pub use error::HubspotError;

/// The item types whose INSERTs invoke the function: template.yaml's `FilterCriteria`.
pub const FILTERED_ITEM_TYPES: &[&str] = &["handoff", "ticket_event"];

/// Whether Lambda's event source mapping would hand `record` to the function; `baton-local`
/// applies it to the stream it reads.
pub fn passes_filter(record: &EventRecord) -> bool {
    record.event_name == "INSERT"
        && matches!(
            record.change.new_image.get("item_type"),
            Some(serde_dynamo::AttributeValue::S(t)) if FILTERED_ITEM_TYPES.contains(&t.as_str())
        )
}

/// What one record became.
#[derive(Debug)]
pub enum RecordResult {
    Delivered(Box<Delivered>),
    Event(Box<EventDone>),
    Skipped,
    Dropped(String),
    Retry(String),
}

pub async fn process_record(
    deliverer: &Deliverer,
    record: &EventRecord,
    deadline: Instant,
) -> RecordResult {
    if record.event_name != "INSERT" {
        return RecordResult::Skipped;
    }
    let handoff = match change_from_image(record.change.new_image.clone()) {
        Ok(Some(Change::Handoff(h))) => h,
        Ok(Some(Change::TicketEvent(e))) => return process_event(deliverer, &e, deadline).await,
        Ok(_) => return RecordResult::Skipped,
        Err(e) => return RecordResult::Dropped(e.to_string()),
    };
    let span = tracing::info_span!("handoff", handoff_id = %handoff.id);
    match deliverer.deliver(&handoff, deadline).instrument(span).await {
        Ok(d) => {
            observe::count(
                match &d {
                    Delivered::Done(_) => metric::HANDOFFS_DELIVERED,
                    Delivered::Parked(_) => metric::HANDOFFS_PARKED,
                },
                1,
            );
            RecordResult::Delivered(Box::new(d))
        }
        Err(e) => failure(&e),
    }
}

/// A run that failed: retried (the batch stops here) or dropped, and counted.
fn failure(e: &HubspotError) -> RecordResult {
    observe::count(metric::HUBSPOT_FAILURES, 1);
    if e.is_retryable() {
        RecordResult::Retry(e.log_summary())
    } else {
        RecordResult::Dropped(e.log_summary())
    }
}

/// One event on a handoff's ticket.
pub async fn process_event(
    deliverer: &Deliverer,
    event: &baton_shared::domain::TicketEvent,
    deadline: Instant,
) -> RecordResult {
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
            RecordResult::Event(Box::new(done))
        }
        Err(e) => failure(&e),
    }
}

/// Handles one batch, in order, stopping at the first record worth retrying.
pub async fn handle_batch(
    deliverer: &Deliverer,
    event: Event,
    deadline: Instant,
) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    for record in &event.records {
        match process_record(deliverer, record, deadline).await {
            RecordResult::Delivered(_) | RecordResult::Event(_) | RecordResult::Skipped => {}
            RecordResult::Dropped(reason) => {
                tracing::error!(event_id = %record.event_id, reason = %reason, "stream record dropped: it can never be processed");
            }
            RecordResult::Retry(reason) => {
                tracing::warn!(event_id = %record.event_id, reason = %reason, "handoff failed; it and the records after it will be retried");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = record.change.sequence_number.clone();
                response.batch_item_failures.push(failure);
                break;
            }
        }
    }
    response
}

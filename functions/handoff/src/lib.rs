//! The handoff function: detecting that a person must take over, the transcript, the insights and
//! copying the customer's media; a DynamoDB stream consumer. Each record of a batch is read as a store
//! change (a new message or agent event) and handed to [`Processor`], in order. A record that
//! fails in a way a retry could fix is reported as the batch's failure (`ReportBatchItemFailures`)
//! and the records after it are left for that retry, so a conversation's changes are processed in
//! order; a record that can never be processed is logged and skipped.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use baton_shared::domain::{Change, MediaState};
use baton_shared::observe::{self, metric};
use baton_shared::store::change_from_image;
use tracing::Instrument;

pub mod config;
pub mod detect;
pub mod insights;
pub mod llm;
pub mod media;
mod phrases;
pub mod process;
pub mod text;

pub use config::HandoffConfig;
pub use detect::{Detection, DetectionKind, Detector};
pub use process::{HandoffSettings, Outcome, ProcessError, Processor};

/// What one record became.
#[derive(Debug)]
pub enum RecordResult {
    Processed(Outcome),
    /// Not a change this function handles (a status, a delivery, a removal).
    Skipped,
    /// Unreadable or refused for good; logged.
    Dropped(String),
    /// Worth retrying; the batch stops here.
    Retry(String),
}

/// The item types whose INSERTs invoke the function: template.yaml's `FilterCriteria`.
pub const FILTERED_ITEM_TYPES: &[&str] = &["message", "agent_event"];

/// Whether Lambda's event source mapping would hand `record` to the function (template.yaml's
/// `FilterCriteria`); `baton-local` applies it to the stream it reads.
pub fn passes_filter(record: &EventRecord) -> bool {
    record.event_name == "INSERT"
        && matches!(
            record.change.new_image.get("item_type"),
            Some(serde_dynamo::AttributeValue::S(t)) if FILTERED_ITEM_TYPES.contains(&t.as_str())
        )
}

/// Reads a stream record's new image as a store change.
pub fn change_of(record: &EventRecord) -> Result<Option<Change>, String> {
    if record.event_name != "INSERT" {
        return Ok(None);
    }
    change_from_image(record.change.new_image.clone()).map_err(|e| e.to_string())
}

/// Processes one record.
pub async fn process_record(processor: &Processor, record: &EventRecord) -> RecordResult {
    let change = match change_of(record) {
        Ok(Some(c)) => c,
        Ok(None) => return RecordResult::Skipped,
        Err(e) => return RecordResult::Dropped(e),
    };
    // One correlation id per record: the message's (never its wamid, which holds the customer's
    // number), the agent event's, or the handoff's.
    let span = match &change {
        Change::Message(m) => {
            tracing::info_span!("record", message_ref = %observe::message_ref(&m.wamid))
        }
        Change::AgentEvent(e) => tracing::info_span!("record", agent_event = %e.event_id),
        Change::Handoff(h) => tracing::info_span!("record", handoff_id = %h.id),
        Change::TicketEvent(e) => tracing::info_span!("record", handoff_id = %e.handoff_id),
    };
    match processor.process(&change).instrument(span).await {
        Ok(outcome) => {
            match &outcome {
                Outcome::Opened { .. } => observe::count(metric::HANDOFFS, 1),
                Outcome::FollowUp { new: true, .. } => observe::count(metric::FOLLOW_UPS, 1),
                Outcome::MediaSaved(MediaState::Copied) => observe::count(metric::MEDIA_COPIED, 1),
                Outcome::MediaSaved(MediaState::Failed) => observe::count(metric::MEDIA_FAILED, 1),
                _ => {}
            }
            RecordResult::Processed(outcome)
        }
        Err(e) if e.is_retryable() => RecordResult::Retry(e.to_string()),
        Err(e) => RecordResult::Dropped(e.to_string()),
    }
}

/// Handles one batch from the event source mapping.
pub async fn handle_batch(processor: &Processor, event: Event) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    for record in &event.records {
        let sequence = record.change.sequence_number.clone();
        match process_record(processor, record).await {
            RecordResult::Processed(_) | RecordResult::Skipped => {}
            RecordResult::Dropped(reason) => {
                tracing::error!(event_id = %record.event_id, reason = %reason, "stream record dropped: it can never be processed");
            }
            RecordResult::Retry(reason) => {
                tracing::warn!(event_id = %record.event_id, reason = %reason, "stream record failed; it and the records after it will be retried");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = sequence;
                response.batch_item_failures.push(failure);
                break;
            }
        }
    }
    response
}

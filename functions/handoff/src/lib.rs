//! The handoff function: detecting that a person must take over, the transcript, the insights and
//! copying the customer's media. A DynamoDB stream consumer: each new message or agent event is
//! handed to [`Processor`], in order ([`baton_shared::stream`]).

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use baton_shared::domain::{Change, MediaState};
use baton_shared::observe::{self, metric};
use baton_shared::retry::Classify as _;
use baton_shared::stream::{self, RecordHandler, RecordOutcome};
use tracing::Instrument;

pub mod bedrock;
pub mod config;
pub mod copies;
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

/// The item types whose INSERTs invoke the function: template.yaml's `FilterCriteria`.
pub const FILTERED_ITEM_TYPES: &[&str] = &["message", "agent_event"];

/// The item kinds filtered out of those: the agent's reasoning, which only the transcript reads.
pub const FILTERED_OUT_KINDS: &[&str] = &["reasoning"];

/// Whether Lambda's event source mapping would hand `record` to the function.
pub fn passes_filter(record: &EventRecord) -> bool {
    let kind = match record.change.new_image.get("kind") {
        Some(serde_dynamo::AttributeValue::S(k)) => Some(k.as_str()),
        _ => None,
    };
    stream::passes_filter(record, FILTERED_ITEM_TYPES)
        && kind.is_some_and(|k| !FILTERED_OUT_KINDS.contains(&k))
}

/// Processes one record.
pub async fn process_record(processor: &Processor, record: &EventRecord) -> RecordOutcome {
    let change = match stream::change_of(record) {
        Ok(Some(c)) => c,
        Ok(None) => return RecordOutcome::Skipped,
        Err(e) => return RecordOutcome::Dropped(e.to_string()),
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
            RecordOutcome::Done
        }
        Err(e) if e.is_retryable() => RecordOutcome::Retry(e.to_string()),
        Err(e) => RecordOutcome::Dropped(e.to_string()),
    }
}

impl RecordHandler for Processor {
    async fn handle(&self, record: &EventRecord) -> RecordOutcome {
        process_record(self, record).await
    }
}

/// Handles one invocation of the function, from either of its event sources: a batch of media
/// copy jobs from SQS, or a batch of the table's stream records; returns the batch's answer.
pub async fn handle_invocation(
    processor: &Processor,
    payload: serde_json::Value,
) -> Result<serde_json::Value, serde_json::Error> {
    if payload["Records"][0]["eventSource"] == "aws:sqs" {
        let batch: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(payload)?;
        serde_json::to_value(copies::handle_copies(processor, batch).await)
    } else {
        let batch: Event = serde_json::from_value(payload)?;
        serde_json::to_value(handle_batch(processor, batch).await)
    }
}

/// Handles one batch from the event source mapping.
pub async fn handle_batch(processor: &Processor, event: Event) -> DynamoDbEventResponse {
    stream::process_by_partition(&event, processor).await
}

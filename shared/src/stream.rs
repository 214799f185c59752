//! The runtime both stream functions share: Lambda's event source mapping hands a function a
//! batch of DynamoDB stream records (filtered by `item_type`, template.yaml's `FilterCriteria`);
//! each record is handled in order, in its own span, and the first one worth retrying is reported
//! as the batch's failure (`ReportBatchItemFailures`), so it and the records after it come again
//! and a conversation's changes keep their order. A record that can never be handled is logged
//! and skipped.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_runtime::{LambdaEvent, service_fn};
use tokio::time::Instant;
use tracing::Instrument;

use crate::domain::Change;
use crate::store::{StoreError, change_from_image};

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Handled (or found already handled).
    Done,
    /// Not a change this function handles (a status, a delivery, a removal).
    Skipped,
    /// Unreadable or refused for good; logged, and the batch goes on.
    Dropped(String),
    /// Worth retrying: the batch stops here.
    Retry(String),
}

/// Whether Lambda's event source mapping would hand `record` to a function that takes INSERTs of
/// `item_types`; `baton-local` applies it to the stream it reads.
pub fn passes_filter(record: &EventRecord, item_types: &[&str]) -> bool {
    record.event_name == "INSERT"
        && matches!(
            record.change.new_image.get("item_type"),
            Some(serde_dynamo::AttributeValue::S(t)) if item_types.contains(&t.as_str())
        )
}

/// The store change an INSERT carries; `None` for any other event.
pub fn change_of(record: &EventRecord) -> Result<Option<Change>, StoreError> {
    if record.event_name != "INSERT" {
        return Ok(None);
    }
    change_from_image(record.change.new_image.clone())
}

/// What a stream function does with one record.
pub trait RecordHandler: Send + Sync {
    fn handle(&self, record: &EventRecord) -> impl Future<Output = RecordOutcome> + Send;
}

impl<T: RecordHandler> RecordHandler for Arc<T> {
    fn handle(&self, record: &EventRecord) -> impl Future<Output = RecordOutcome> + Send {
        T::handle(self, record)
    }
}

/// Runs a stream function under Lambda: each invocation's batch goes, in order, to the handler
/// `handler_for` makes for the invocation's deadline (less `margin`, kept back to record trails
/// and answer), and the function's metrics (`name`) are flushed after it.
pub async fn run_lambda<H, F>(
    name: &'static str,
    margin: Duration,
    handler_for: F,
) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Instant) -> H,
    H: RecordHandler + 'static,
{
    lambda_runtime::run(service_fn(|event: LambdaEvent<Event>| {
        let left_ms = (event.context.deadline as i64 - crate::clock::now_ms()).max(0);
        let left = Duration::from_millis(left_ms as u64).saturating_sub(margin);
        let handler = handler_for(Instant::now() + left);
        async move {
            let response = process_in_order(&event.payload, &handler).await;
            crate::observe::flush(name);
            Ok::<_, lambda_runtime::Error>(response)
        }
    }))
    .await
}

/// Handles `event`'s records in order with `handler`, stopping at the first one worth retrying.
pub async fn process_in_order(
    event: &Event,
    handler: &impl RecordHandler,
) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    for record in &event.records {
        let span = tracing::info_span!("stream_record", event_id = %record.event_id);
        match handler.handle(record).instrument(span).await {
            RecordOutcome::Done | RecordOutcome::Skipped => {}
            RecordOutcome::Dropped(reason) => {
                tracing::error!(event_id = %record.event_id, reason = %reason, "stream record dropped: it can never be processed");
            }
            RecordOutcome::Retry(reason) => {
                tracing::warn!(event_id = %record.event_id, reason = %reason, "stream record failed; it and the records after it will be retried");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = record.change.sequence_number.clone();
                response.batch_item_failures.push(failure);
                break;
            }
        }
    }
    response
}

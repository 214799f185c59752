//! The runtime both stream functions share: Lambda's event source mapping hands a function a
//! batch of DynamoDB stream records (filtered by `item_type`, template.yaml's `FilterCriteria`).
//! Records are grouped by partition key (a conversation, or a handoff and its ticket events): the
//! groups run concurrently, each one's records in order, so a slow conversation never holds up
//! another's. A group's first record worth retrying is reported as a failure
//! (`ReportBatchItemFailures`) and the rest of that group waits for the retry; a record that can
//! never be handled is logged and skipped.

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
            let response = process_by_partition(&event.payload, &handler).await;
            crate::observe::flush(name);
            Ok::<_, lambda_runtime::Error>(response)
        }
    }))
    .await
}

/// The partition key a record's item is stored under: the unit whose order must be kept.
fn partition_of(record: &EventRecord) -> &str {
    match record.change.keys.get("pk") {
        Some(serde_dynamo::AttributeValue::S(pk)) => pk,
        _ => "",
    }
}

/// Handles `event`'s records with `handler`: one partition's records in order, stopping at the
/// first worth retrying; different partitions at the same time. Lambda retries from the lowest
/// failed sequence number, so records of other partitions after it come again and are found
/// already handled.
pub async fn process_by_partition(
    event: &Event,
    handler: &impl RecordHandler,
) -> DynamoDbEventResponse {
    let mut groups: Vec<(&str, Vec<&EventRecord>)> = Vec::new();
    for record in &event.records {
        let pk = partition_of(record);
        match groups.iter_mut().find(|(key, _)| *key == pk) {
            Some((_, records)) => records.push(record),
            None => groups.push((pk, vec![record])),
        }
    }
    let runs = groups
        .iter()
        .map(|(_, records)| process_in_order(records, handler));
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = failures_of(runs).await;
    response
}

/// Runs `runs` side by side and keeps the failures they report, for a batch's response.
pub async fn failures_of<T>(
    runs: impl IntoIterator<Item = impl Future<Output = Option<T>>>,
) -> Vec<T> {
    futures_util::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Handles one partition's records in order, stopping at the first one worth retrying, which it
/// returns as the failure to report.
async fn process_in_order(
    records: &[&EventRecord],
    handler: &impl RecordHandler,
) -> Option<DynamoDbBatchItemFailure> {
    for record in records {
        let span = tracing::info_span!("stream_record", event_id = %record.event_id);
        match handler.handle(record).instrument(span).await {
            RecordOutcome::Done | RecordOutcome::Skipped => {}
            RecordOutcome::Dropped(reason) => {
                tracing::error!(event_id = %record.event_id, reason = %reason, "stream record dropped: it can never be processed");
            }
            RecordOutcome::Retry(reason) => {
                tracing::warn!(event_id = %record.event_id, reason = %reason, "stream record failed; it and its partition's records after it will be retried");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = record.change.sequence_number.clone();
                return Some(failure);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// Partition `a-…` records wait for a gate partition `b` opens, and `a-fail` asks for a retry.
    struct Gate {
        opened: tokio::sync::Notify,
        seen: Mutex<Vec<String>>,
    }

    impl RecordHandler for Gate {
        async fn handle(&self, record: &EventRecord) -> RecordOutcome {
            let id = record.event_id.clone();
            if id.starts_with("a-") && id != "a-after" {
                // Only finishes once partition b ran: a waiting partition holds up only itself.
                tokio::time::timeout(Duration::from_secs(5), self.opened.notified())
                    .await
                    .expect("partition b ran while a waited");
            }
            if id.starts_with("b-") {
                self.opened.notify_one();
            }
            self.seen.lock().unwrap().push(id.clone());
            if id == "a-fail" {
                return RecordOutcome::Retry("try again".into());
            }
            RecordOutcome::Done
        }
    }

    fn record(id: &str, pk: &str, seq: &str) -> EventRecord {
        let mut r = EventRecord::default();
        r.event_id = id.into();
        r.event_name = "INSERT".into();
        r.change.sequence_number = Some(seq.into());
        r.change.keys = serde_dynamo::Item::from(HashMap::from([(
            "pk".to_owned(),
            serde_dynamo::AttributeValue::S(pk.into()),
        )]));
        r
    }

    #[tokio::test]
    async fn partitions_run_side_by_side_each_in_order_and_a_retry_stops_only_its_own() {
        let mut event = Event::default();
        event.records = vec![
            record("a-fail", "CONV#a", "1"),
            record("b-1", "CONV#b", "2"),
            record("a-after", "CONV#a", "3"),
            record("b-2", "CONV#b", "4"),
        ];
        let gate = Gate {
            opened: tokio::sync::Notify::new(),
            seen: Mutex::new(Vec::new()),
        };
        let response = process_by_partition(&event, &gate).await;
        let seen = gate.seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            ["b-1", "b-2", "a-fail"],
            "a's later record waits for the retry"
        );
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        assert_eq!(failed, [Some("1".to_owned())]);
    }
}

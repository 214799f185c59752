//! Where media copies run, so that none holds up a conversation's records: each copy is a job put
//! on a queue ([`CopyQueue`]) as the message arrives, and runs apart from the stream. The Lambda puts it on an SQS
//! queue the same function reads ([`SqsCopyQueue`]); `baton-local` runs it as a task of its own
//! ([`TokioCopyQueue`]). Either way the job ends in [`Processor::run_copy`].

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use baton_shared::store::StoreError;
use tokio::sync::{Semaphore, mpsc};

use crate::media::{CopyQueue, MediaJob};
use crate::process::Processor;

/// The Lambda's queue of copy jobs, read by the same function (`MediaCopies` in template.yaml).
pub struct SqsCopyQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsCopyQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: String) -> Self {
        Self { client, url }
    }
}

#[async_trait]
impl CopyQueue for SqsCopyQueue {
    async fn enqueue(&self, job: &MediaJob) -> Result<(), StoreError> {
        let body = serde_json::to_string(job).map_err(|e| StoreError::corrupt(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                StoreError::unavailable(format!("SQS SendMessage: {}", e.into_service_error()))
            })
    }
}

/// `baton-local`'s queue: each job runs as a task, a bounded number at once.
pub struct TokioCopyQueue {
    jobs: mpsc::UnboundedSender<MediaJob>,
}

/// Copies `baton-local` runs at once.
pub const LOCAL_COPIES_AT_ONCE: usize = 8;

impl TokioCopyQueue {
    /// The queue, and the receiving end to hand to [`run_local_copies`] once the processor exists.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<MediaJob>) {
        let (jobs, receiver) = mpsc::unbounded_channel();
        (Self { jobs }, receiver)
    }
}

#[async_trait]
impl CopyQueue for TokioCopyQueue {
    async fn enqueue(&self, job: &MediaJob) -> Result<(), StoreError> {
        self.jobs
            .send(job.clone())
            .map_err(|_| StoreError::unavailable("the copy workers have stopped"))
    }
}

/// Runs every job `receiver` gets with `processor`, [`LOCAL_COPIES_AT_ONCE`] at a time, until
/// the processor (which holds the queue's sending end) is dropped.
pub fn run_local_copies(
    processor: &Arc<Processor>,
    mut receiver: mpsc::UnboundedReceiver<MediaJob>,
) -> impl Future<Output = ()> + Send + 'static {
    // Held weakly: the processor holds the sender, so a strong hold would keep both alive.
    let processor = Arc::downgrade(processor);
    async move {
        let slots = Arc::new(Semaphore::new(LOCAL_COPIES_AT_ONCE));
        while let Some(job) = receiver.recv().await {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let Some(processor) = processor.upgrade() else {
                return;
            };
            tokio::spawn(async move {
                if let Err(e) = processor.run_copy(&job).await {
                    tracing::error!(error = %e, "a media copy's outcome could not be stored; the file is retried at the handoff");
                }
                drop(slot);
            });
        }
    }
}

/// Handles one batch of copy jobs from SQS; a job whose outcome could not be stored comes again
/// (and after the queue's receive count, goes to its dead-letter queue).
pub async fn handle_copies(processor: &Processor, event: SqsEvent) -> SqsBatchResponse {
    let runs = event.records.iter().map(|record| async move {
        let job = match record.body.as_deref().map(serde_json::from_str::<MediaJob>) {
            Some(Ok(job)) => job,
            other => {
                let reason = match other {
                    Some(Err(e)) => e.to_string(),
                    _ => "no body".to_owned(),
                };
                tracing::error!(message_id = ?record.message_id, reason = %reason, "copy job unreadable; dropped");
                return None;
            }
        };
        match processor.run_copy(&job).await {
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "copy job failed; SQS hands it over again");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = record.message_id.clone().unwrap_or_default();
                Some(failure)
            }
        }
    });
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = baton_shared::stream::failures_of(runs).await;
    response
}

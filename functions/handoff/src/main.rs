//! The handoff Lambda: wiring only. Two event sources invoke it: the table's stream (new messages
//! and agent events) and the queue of media copies.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::sqs::SqsEvent;
use baton_handoff::HandoffConfig;
use baton_handoff::bedrock::BedrockInsights;
use baton_handoff::copies::{SqsCopyQueue, handle_copies};
use baton_shared::config::{MEDIA_COPY_QUEUE_URL, ProcessEnv, StreamFunction, optional};
use baton_shared::observe;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let function = StreamFunction::load().await?;
    let cfg = HandoffConfig::from_source(&function.settings)?;
    if cfg.graph.token.is_none() {
        tracing::error!(
            "WHATSAPP_ACCESS_TOKEN is not set: media cannot be copied until it is put into the stack's secret"
        );
    }
    let bedrock = cfg.bedrock.clone();
    let mut processor = cfg.build(function.store, function.objects)?;
    let aws = baton_shared::retry::load_aws().await;
    if let Some(url) = optional(&ProcessEnv, MEDIA_COPY_QUEUE_URL) {
        let sqs = aws_sdk_sqs::Client::new(&aws);
        processor = processor.with_copy_queue(Arc::new(SqsCopyQueue::new(sqs, url)));
    }
    if let Some(model) = bedrock {
        processor = processor.with_bedrock(BedrockInsights::new(&aws, model));
    }
    let processor = Arc::new(processor);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let processor = processor.clone();
        async move {
            let from_sqs = event.payload["Records"][0]["eventSource"] == "aws:sqs";
            let response = if from_sqs {
                let batch: SqsEvent = serde_json::from_value(event.payload)?;
                serde_json::to_value(handle_copies(&processor, batch).await)?
            } else {
                let batch: Event = serde_json::from_value(event.payload)?;
                serde_json::to_value(baton_handoff::handle_batch(&processor, batch).await)?
            };
            observe::flush("handoff");
            Ok::<_, lambda_runtime::Error>(response)
        }
    }))
    .await
}

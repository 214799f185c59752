//! The handoff Lambda: wiring only. Two event sources invoke it: the table's stream (new messages
//! and agent events) and the queue of media copies ([`baton_handoff::handle_invocation`]).

use std::sync::Arc;

use baton_handoff::HandoffConfig;
use baton_handoff::bedrock::BedrockInsights;
use baton_handoff::copies::SqsCopyQueue;
use baton_shared::config::StreamFunction;
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
    let (queue_url, bedrock) = (cfg.copy_queue_url.clone(), cfg.bedrock.clone());
    let mut processor = cfg.build(function.store, function.objects)?;
    if let Some(url) = queue_url {
        let sqs = aws_sdk_sqs::Client::new(&function.aws);
        processor = processor.with_copy_queue(Arc::new(SqsCopyQueue::new(sqs, url)));
    }
    if let Some(model) = bedrock {
        processor = processor.with_bedrock(BedrockInsights::new(&function.aws, model));
    }
    let processor = Arc::new(processor);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let processor = processor.clone();
        async move {
            let response = baton_handoff::handle_invocation(&processor, event.payload).await?;
            observe::flush("handoff");
            Ok::<_, lambda_runtime::Error>(response)
        }
    }))
    .await
}

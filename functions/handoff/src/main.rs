//! The handoff Lambda: wiring only.

use std::sync::Arc;

use baton_handoff::llm::LlmClient;
use baton_handoff::media::MediaCopier;
use baton_handoff::{HandoffConfig, Processor};
use baton_shared::config::StreamFunction;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let StreamFunction {
        settings,
        store,
        objects,
    } = StreamFunction::load().await?;
    let cfg = HandoffConfig::from_source(&settings)?;
    if cfg.graph.token.is_none() {
        tracing::error!(
            "WHATSAPP_ACCESS_TOKEN is not set: media cannot be copied until it is put into the stack's secret"
        );
    }
    let copier = MediaCopier::new(cfg.graph, Arc::new(objects))?;
    let llm = cfg.llm.map(LlmClient::new).transpose()?;
    let store = Arc::new(store);
    let processor = Arc::new(Processor::new(store, copier, llm, cfg.settings));
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<aws_lambda_events::event::dynamodb::Event>| {
            let processor = processor.clone();
            async move {
                let response = baton_handoff::handle_batch(&processor, event.payload).await;
                baton_shared::observe::flush("handoff");
                Ok::<_, Error>(response)
            }
        },
    ))
    .await
}

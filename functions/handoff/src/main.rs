//! The handoff Lambda: wiring only.

use std::sync::Arc;

use baton_shared::config::{self, HandoffConfig, ProcessEnv, Settings};
use baton_shared::handoff::Processor;
use baton_shared::handoff::llm::LlmClient;
use baton_shared::handoff::media::MediaCopier;
use baton_shared::objects::S3Store;
use baton_shared::store::DynamoDbStore;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let (table, bucket) = config::table_and_bucket(&ProcessEnv)?;
    let aws = aws_config::load_from_env().await;
    let settings = Settings::load(&aws).await?;
    let cfg = HandoffConfig::from_source(&settings)?;
    if cfg.graph.token.is_none() {
        tracing::error!(
            "WHATSAPP_ACCESS_TOKEN is not set: media cannot be copied until it is put into the stack's secret"
        );
    }
    let objects = Arc::new(S3Store::from_config(&aws, bucket, cfg.s3_path_style));
    let copier = MediaCopier::new(cfg.graph, objects)?;
    let llm = cfg.llm.map(LlmClient::new).transpose()?;
    let store = Arc::new(DynamoDbStore::from_config(&aws, table));
    let processor = Arc::new(Processor::new(store, copier, llm, cfg.settings));
    lambda_runtime::run(service_fn(|event: LambdaEvent<aws_lambda_events::event::dynamodb::Event>| {
        let processor = processor.clone();
        async move { Ok::<_, Error>(baton_handoff::handle_batch(&processor, event.payload).await) }
    }))
    .await
}

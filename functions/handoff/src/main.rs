//! The handoff Lambda: wiring only.

use std::sync::Arc;
use std::time::Duration;

use baton_handoff::HandoffConfig;
use baton_shared::config::StreamFunction;
use baton_shared::stream;

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
    let processor = Arc::new(cfg.build(function.store, function.objects)?);
    stream::run_lambda("handoff", Duration::ZERO, |_| processor.clone()).await
}

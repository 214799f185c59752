//! The HubSpot Lambda: wiring only.

use std::sync::Arc;
use std::time::Duration;

use baton_hubspot::{Deliverer, HubspotConfig, Invocation};
use baton_shared::config::StreamFunction;
use baton_shared::stream;

/// Time kept back from the Lambda deadline to record the trail and answer.
const MARGIN: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let function = StreamFunction::load().await?;
    let deliverer = Arc::new(Deliverer::from_config(
        HubspotConfig::from_source(&function.settings)?,
        function.store,
        function.objects,
    )?);
    let invocation = |deadline| Invocation::new(deliverer.clone(), deadline);
    stream::run_lambda("hubspot", MARGIN, invocation).await
}

//! The HubSpot Lambda: wiring only.

use std::sync::Arc;
use std::time::Duration;

use baton_hubspot::{Deliverer, HubspotClient, HubspotConfig};
use baton_shared::config::StreamFunction;
use lambda_runtime::{Error, LambdaEvent, service_fn};

/// Time kept back from the Lambda deadline to record the trail and answer.
const MARGIN: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let StreamFunction {
        settings,
        store,
        objects,
    } = StreamFunction::load().await?;
    let cfg = HubspotConfig::from_source(&settings)?;
    let client = match HubspotClient::from_config(&cfg)? {
        Some(client) => Some(client),
        None => {
            tracing::error!(
                "HUBSPOT_ACCESS_TOKEN is not set: handoffs are parked until it is put into the stack's secret"
            );
            None
        }
    };
    let deliverer = Arc::new(Deliverer::new(
        cfg,
        client,
        Arc::new(store),
        Arc::new(objects),
    ));
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<aws_lambda_events::event::dynamodb::Event>| {
            let deliverer = deliverer.clone();
            async move {
                let left_ms =
                    (event.context.deadline as i64 - baton_shared::clock::now_ms()).max(0);
                let remaining = Duration::from_millis(left_ms as u64).saturating_sub(MARGIN);
                let deadline = tokio::time::Instant::now() + remaining;
                let response =
                    baton_hubspot::handle_batch(&deliverer, event.payload, deadline).await;
                baton_shared::observe::flush("hubspot");
                Ok::<_, Error>(response)
            }
        },
    ))
    .await
}

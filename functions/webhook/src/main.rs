//! The webhook Lambda: wiring only.

use std::sync::Arc;

use baton_shared::config::{self, ProcessEnv, TABLE_NAME, WebhookSecrets};
use baton_shared::store::DynamoDbStore;
use baton_webhook::{Webhook, handle_lambda};
use lambda_http::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let secrets = WebhookSecrets::from_source(&ProcessEnv)?;
    let table = config::required(
        &ProcessEnv,
        TABLE_NAME,
        "template.yaml sets it to the Baton table",
    )?;
    let store = DynamoDbStore::from_env(table).await;
    let app = Webhook::new(Arc::new(store), secrets);
    lambda_http::run(service_fn(|req| handle_lambda(&app, req))).await
}

//! The webhook Lambda: wiring only.

use std::sync::Arc;

use baton_shared::config::{self, Settings, TABLE_NAME, WebhookSecrets};
use baton_shared::store::DynamoDbStore;
use baton_webhook::{Webhook, handle_lambda};
use lambda_http::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    // Loading the SDK configuration is the costly part of start-up; do it once, share it.
    let aws = aws_config::load_from_env().await;
    let settings = Settings::load(&aws).await?;
    let secrets = WebhookSecrets::from_source(&settings)?;
    if secrets.app_secret_is_placeholder() {
        tracing::error!(
            "WHATSAPP_APP_SECRET is still the placeholder: every delivery will be refused with 401 \
             until the Meta App Secret is put into the stack's secret (see the README)"
        );
    }
    let table = config::required(
        &settings,
        TABLE_NAME,
        "template.yaml sets it to the Baton table",
    )?;
    let store = DynamoDbStore::from_config(&aws, table);
    let app = Webhook::new(Arc::new(store), secrets);
    lambda_http::run(service_fn(|req| handle_lambda(&app, req))).await
}

//! The webhook Lambda: wiring only.

use std::sync::Arc;

use baton_shared::config::{
    self, MEDIA_BUCKET, PUBLIC_BASE_URL, ProcessEnv, SECRET_ARN, SESSION_LINK_SECRET,
    SESSION_LINK_TTL_DAYS, SESSION_MEDIA_URL_SECS, Settings, TABLE_NAME, WebhookSecrets,
};
use baton_shared::objects::S3Store;
use baton_shared::session::SessionLinks;
use baton_shared::store::DynamoDbStore;
use baton_webhook::session_page::{self as page, SessionPages};
use baton_webhook::{Webhook, handle_lambda};
use lambda_http::{Error, service_fn};
use tokio::sync::OnceCell;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    // What can be checked without the network is checked now, so that a missing setting stops
    // start-up with its name.
    let table = config::required(
        &ProcessEnv,
        TABLE_NAME,
        "template.yaml sets it to the Baton table",
    )?;
    if config::optional(&ProcessEnv, SECRET_ARN).is_none() {
        WebhookSecrets::from_source(&ProcessEnv)?;
    }
    // The AWS clients and the secret are built on the first request, then kept: the SDK's HTTPS
    // client parses the system's CA certificates (about 2.5 ms) and reading the secret is a
    // network call. A cold start caused by a request pays that before its first answer either
    // way; doing it here would only delay the runtime's first call for an event. benches/init.rs
    // measures both.
    let app: Arc<OnceCell<Webhook>> = Arc::new(OnceCell::new());
    lambda_http::run(service_fn(|req| {
        let (app, table) = (app.clone(), table.clone());
        async move { handle_lambda(app.get_or_init(|| build(table)).await, req).await }
    }))
    .await
}

/// Builds the handler, or ends the process: Lambda then reports the error and starts afresh.
async fn build(table: String) -> Webhook {
    let aws = aws_config::load_from_env().await;
    let (settings, secrets) = match Settings::load(&aws).await.and_then(|s| {
        let secrets = WebhookSecrets::from_source(&s)?;
        Ok((s, secrets))
    }) {
        Ok(loaded) => loaded,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            std::process::exit(1);
        }
    };
    if secrets.app_secret_is_placeholder() {
        tracing::error!(
            "WHATSAPP_APP_SECRET is still the placeholder: every delivery will be refused with 401 \
             until the Meta App Secret is put into the stack's secret (see the README)"
        );
    }
    if secrets.agent_secrets.is_none() {
        tracing::warn!(
            "AGENT_EVENTS_SECRET is not set (or still the placeholder): POST /agent/events answers \
             401 until it is put into the stack's secret"
        );
    }
    let retention = match config::retention_days(&settings) {
        Ok(days) => days,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            std::process::exit(1);
        }
    };
    let store = Arc::new(DynamoDbStore::from_config(&aws, table).with_retention(retention));
    if secrets.hubspot_secrets.is_none() {
        tracing::warn!(
            "HUBSPOT_APP_SECRET is not set: POST /hubspot/events answers 401, so reps' replies and \
             ticket closes are not seen until the HubSpot app's client secret is in the stack's secret"
        );
    }
    let app = Webhook::new(store.clone(), secrets)
        .with_public_base_url(config::optional(&settings, PUBLIC_BASE_URL));
    match session_pages(&aws, &settings, store) {
        Ok(Some(pages)) => app.with_sessions(pages),
        Ok(None) => {
            tracing::warn!(
                "SESSION_LINK_SECRET or MEDIA_BUCKET is not set: session pages answer 404"
            );
            app
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            std::process::exit(1);
        }
    }
}

/// The session pages, when the stack gives the link key and the media bucket.
fn session_pages(
    aws: &aws_config::SdkConfig,
    settings: &Settings,
    store: Arc<DynamoDbStore>,
) -> Result<Option<SessionPages>, config::ConfigError> {
    let (Some(secret), Some(bucket)) = (
        config::optional(settings, SESSION_LINK_SECRET),
        config::optional(settings, MEDIA_BUCKET),
    ) else {
        return Ok(None);
    };
    let links = SessionLinks::new(
        &config::optional(settings, PUBLIC_BASE_URL).unwrap_or_default(),
        secret.into(),
        config::number(
            settings,
            SESSION_LINK_TTL_DAYS,
            baton_shared::session::DEFAULT_TTL_DAYS,
        )?,
    );
    let media_url_secs = config::number(
        settings,
        SESSION_MEDIA_URL_SECS,
        page::DEFAULT_MEDIA_URL_SECS,
    )?;
    let objects = S3Store::from_config(aws, bucket, config::s3_path_style(settings));
    Ok(Some(
        SessionPages::new(store.clone(), store, Arc::new(objects), links)
            .with_media_url_ttl(std::time::Duration::from_secs(media_url_secs)),
    ))
}

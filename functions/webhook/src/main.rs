//! The webhook Lambda: wiring only.

use baton_shared::config::{self, ProcessEnv, SECRET_ARN, Settings, TABLE_NAME};
use baton_webhook::{WebhookConfig, handle_lambda};
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
        WebhookConfig::from_source(&ProcessEnv)?;
    }
    // The AWS clients and the secret are read on the first request, then kept: a cold start
    // caused by a request pays that before its first answer either way (benches/init.rs). A
    // failure fails that request and the next one tries again.
    let router = OnceCell::new();
    lambda_http::run(service_fn(|req| async {
        let router = router
            .get_or_try_init(|| async {
                let aws = baton_shared::retry::load_aws().await;
                let cfg = WebhookConfig::from_source(&Settings::load(&aws).await?)?;
                for warning in cfg.warnings() {
                    tracing::warn!("{warning}");
                }
                Ok::<_, config::ConfigError>(cfg.build(&aws, table.clone()).router())
            })
            .await
            .inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
        Ok::<_, Error>(handle_lambda(router.clone(), req).await?)
    }))
    .await
}

//! Deployed functions read their secrets from Secrets Manager (template.yaml's `Secrets`), tested
//! against moto's Secrets Manager server.

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use baton_shared::config::{ConfigError, SECRET_ARN, Settings, Source, read_secret};
use baton_webhook::config::WebhookSecrets;

fn client() -> Option<aws_sdk_secretsmanager::Client> {
    let endpoint = crate::support::moto_endpoint()?;
    let conf = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "baton-tests"))
        .build();
    Some(aws_sdk_secretsmanager::Client::from_conf(conf))
}

async fn create(client: &aws_sdk_secretsmanager::Client, value: &str) -> String {
    client
        .create_secret()
        .name(crate::support::unique("baton/secrets"))
        .secret_string(value)
        .send()
        .await
        .expect("create secret")
        .arn
        .expect("arn")
}

#[tokio::test]
async fn webhook_secrets_come_from_the_stack_secret() {
    let Some(client) = client() else { return };
    let arn = create(
        &client,
        r#"{"WHATSAPP_APP_SECRET": "meta-secret-1,meta-secret-0", "WHATSAPP_VERIFY_TOKEN": "generated-token"}"#,
    )
    .await;
    let secret = read_secret(&client, &arn).await.unwrap();
    let settings = Settings::from_parts(Box::new([("TABLE_NAME", "t")]), secret);
    let secrets = WebhookSecrets::from_source(&settings).unwrap();
    assert_eq!(secrets.app_secrets.len(), 2);
    assert!(!secrets.app_secret_is_placeholder());
    assert_eq!(settings.get("TABLE_NAME").as_deref(), Some("t"));

    // Straight after deploy the secret holds the placeholder; that is recognised.
    let arn = create(
        &client,
        r#"{"WHATSAPP_APP_SECRET": "replace-with-your-meta-app-secret", "WHATSAPP_VERIFY_TOKEN": "x"}"#,
    )
    .await;
    let secrets = WebhookSecrets::from_source(&Settings::from_parts(
        Box::new([("UNUSED", "")]),
        read_secret(&client, &arn).await.unwrap(),
    ))
    .unwrap();
    assert!(secrets.app_secret_is_placeholder());
}

#[tokio::test]
async fn unreadable_secrets_are_named_and_never_quoted() {
    let Some(client) = client() else { return };
    let arn = create(&client, "sup3r-s3cret-not-json").await;
    let err = read_secret(&client, &arn).await.unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                name: SECRET_ARN,
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.to_string().contains("sup3r"), "{err}");

    let err = read_secret(
        &client,
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf",
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("BATON_SECRET_ARN is invalid: cannot read the secret"),
        "{err}"
    );
}

//! `baton-local doctor --stack NAME`, the binary, against a deployed stack on the emulators: its
//! outputs, parameters and secret read from CloudFormation and Secrets Manager (moto), the table
//! on DynamoDB Local, the bucket on s3s-fs, the dead-letter queues on moto's SQS, HubSpot's
//! contract-strict test server, and a stand-in for the deployed webhook and the Graph API.

use std::process::Command;
use std::time::Duration;

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use baton_testkit::hubspot::{HubspotServer, Options, TOKEN};
use baton_testkit::lambda_runtime::Stack;
use serde_json::json;

const VERIFY: &str = "stack-verify-token";
const GRAPH_TOKEN: &str = "EAAG-stack-graph-token";

/// The deployed webhook's handshake and the Graph API's phone number lookup, as they answer.
async fn deployed() -> String {
    async fn handshake(
        Query(q): Query<std::collections::HashMap<String, String>>,
    ) -> (StatusCode, String) {
        match (q.get("hub.verify_token"), q.get("hub.challenge")) {
            (Some(t), Some(c)) if t == VERIFY => (StatusCode::OK, c.clone()),
            _ => (StatusCode::FORBIDDEN, "Forbidden".into()),
        }
    }
    async fn phone(
        Path((_, id)): Path<(String, String)>,
        headers: HeaderMap,
    ) -> (StatusCode, axum::Json<serde_json::Value>) {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
        if auth != Some(&format!("Bearer {GRAPH_TOKEN}")) {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(
                    json!({"error": {"code": 190, "message": "Invalid OAuth access token"}}),
                ),
            );
        }
        (
            StatusCode::OK,
            axum::Json(
                json!({"id": id, "display_phone_number": "+1 555-010-0001", "verified_name": "Stack Shop"}),
            ),
        )
    }
    let app = axum::Router::new()
        .route("/webhook", axum::routing::get(handshake))
        .route("/{version}/{id}", axum::routing::get(phone));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

async fn create_stack(moto: &str, name: &str, outputs: serde_json::Value) {
    let cf = aws_sdk_cloudformation::Client::from_conf(
        aws_sdk_cloudformation::Config::builder()
            .behavior_version(aws_sdk_cloudformation::config::BehaviorVersion::latest())
            .region(aws_sdk_cloudformation::config::Region::new("us-east-1"))
            .endpoint_url(moto)
            .credentials_provider(aws_sdk_cloudformation::config::Credentials::new(
                "test", "test", None, None, "tests",
            ))
            .build(),
    );
    let mut all = json!({
        "HubspotFailuresQueueUrl": {"Value": {"Ref": "HubspotFailures"}},
        "HandoffFailuresQueueUrl": {"Value": {"Ref": "HandoffFailures"}},
    });
    for (k, v) in outputs.as_object().unwrap() {
        all[k] = json!({"Value": v});
    }
    let template = json!({
        "Parameters": {
            "HubspotTicketPipeline": {"Type": "String", "Default": ""},
            "HubspotTicketStage": {"Type": "String", "Default": ""},
            "GraphApiVersion": {"Type": "String", "Default": "v23.0"},
        },
        "Resources": {
            "HubspotFailures": {"Type": "AWS::SQS::Queue"},
            "HandoffFailures": {"Type": "AWS::SQS::Queue"},
        },
        "Outputs": all,
    });
    cf.create_stack()
        .stack_name(name)
        .template_body(template.to_string())
        .parameters(
            aws_sdk_cloudformation::types::Parameter::builder()
                .parameter_key("HubspotTicketPipeline")
                .parameter_value("9170")
                .build(),
        )
        .send()
        .await
        .unwrap();
}

fn doctor(stack: &Stack, name: &str, hubspot: &str, graph: &str) -> (bool, String) {
    let e = &stack.emulators;
    let out = Command::new(env!("CARGO_BIN_EXE_baton-local"))
        .args(["doctor", "--stack", name])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "error")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL_CLOUDFORMATION", &e.moto)
        .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", &e.moto)
        .env("AWS_ENDPOINT_URL_SQS", &e.moto)
        .env("AWS_ENDPOINT_URL_DYNAMODB", &e.dynamodb)
        .env("AWS_ENDPOINT_URL_S3", &e.s3)
        .env("BATON_S3_PATH_STYLE", "1")
        .env("WHATSAPP_PHONE_NUMBER_ID", "106540352242922")
        .env("GRAPH_API_BASE_URL", graph)
        .env("HUBSPOT_BASE_URL", hubspot)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_reads_a_deployed_stack_and_reaches_its_table_bucket_and_queues() {
    let Some(stack) = Stack::start().await else {
        return;
    };
    let hubspot = HubspotServer::start(Options {
        search_lag: Duration::ZERO,
        ..Options::default()
    })
    .await;
    let url = deployed().await;
    let secret = stack
        .secret(
            &json!({"WHATSAPP_APP_SECRET": "stack-app-secret", "WHATSAPP_VERIFY_TOKEN": VERIFY,
            "WHATSAPP_ACCESS_TOKEN": GRAPH_TOKEN, "HUBSPOT_ACCESS_TOKEN": TOKEN,
            "AGENT_EVENTS_SECRET": "stack-agent-secret"}),
        )
        .await;
    let name = format!("baton-doctor-{}", std::process::id());
    create_stack(
        &stack.emulators.moto,
        &name,
        json!({"WebhookUrl": format!("{url}/webhook"), "SecretArn": secret,
               "TableName": stack.store.table(), "MediaBucketName": stack.objects.bucket()}),
    )
    .await;
    let (ok, text) = doctor(&stack, &name, &hubspot.base_url(), &url);
    assert!(ok, "{text}");
    for want in [
        "✓ WHATSAPP_APP_SECRET is set (1 secret(s))",
        "✓ the WhatsApp token reads business number +1 555-010-0001 (Stack Shop)",
        "✓ the HubSpot token is valid and has Baton's 6 scopes",
        // The stack's parameter, not the default pipeline.
        "✓ tickets go to pipeline 9170, stage 9171",
        "/webhook answers Meta's handshake with the verify token",
        &format!(
            "✓ table {} is reachable, its stream on",
            stack.store.table()
        ),
        &format!("✓ bucket {} is reachable", stack.objects.bucket()),
        "✓ the HubSpot dead-letter queue is reachable (0 record(s) waiting)",
        "✓ the handoff dead-letter queue is reachable (0 record(s) waiting)",
        "All 11 checks passed.",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    for secret in [
        "stack-app-secret",
        VERIFY,
        GRAPH_TOKEN,
        TOKEN,
        "stack-agent-secret",
    ] {
        assert!(!text.contains(secret), "a secret is printed:\n{text}");
    }

    // A stack whose table and bucket are gone: named, and the exit code says so.
    let broken = format!("{name}-broken");
    create_stack(
        &stack.emulators.moto,
        &broken,
        json!({"WebhookUrl": format!("{url}/webhook"), "SecretArn": secret,
               "TableName": "baton-no-such-table", "MediaBucketName": "baton-no-such-bucket"}),
    )
    .await;
    let (ok, text) = doctor(&stack, &broken, &hubspot.base_url(), &url);
    assert!(!ok, "{text}");
    assert!(
        text.contains("✗ table baton-no-such-table is not reachable"),
        "{text}"
    );
    assert!(
        text.contains("✗ bucket baton-no-such-bucket is not reachable"),
        "{text}"
    );
    assert!(text.contains("2 of 11 checks failed."), "{text}");
    // And a stack that does not exist.
    let (ok, text) = doctor(&stack, "no-such-stack", &hubspot.base_url(), &url);
    assert!(!ok);
    assert!(
        text.contains("cannot describe stack no-such-stack"),
        "{text}"
    );
}

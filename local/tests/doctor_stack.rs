//! `baton-local doctor --stack NAME`, the binary, against a deployed stack on the emulators: its
//! outputs, parameters and secret read from CloudFormation and Secrets Manager (moto), the table
//! on DynamoDB Local, the bucket on s3s-fs, the dead-letter queues on moto's SQS, HubSpot's
//! contract-strict test server, the test Graph API, and a stand-in for the deployed webhook.
//! `baton-local hubspot-app --stack NAME` takes the events URL from the same kind of stack.

use std::process::Command;
use std::time::Duration;

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use baton_testkit::graph::{self, GraphServer};
use baton_testkit::hubspot::{HubspotServer, Options, TOKEN};
use baton_testkit::lambda_runtime::Stack;
use serde_json::json;

const VERIFY: &str = "stack-verify-token";
const GRAPH_TOKEN: &str = graph::TOKEN;
const WABA: &str = "102290129340398";

/// The deployed webhook's handshake, and its HubSpot events endpoint taking a signed event.
async fn deployed() -> String {
    async fn handshake(
        Query(q): Query<std::collections::HashMap<String, String>>,
    ) -> (StatusCode, String) {
        match (q.get("hub.verify_token"), q.get("hub.challenge")) {
            (Some(t), Some(c)) if t == VERIFY => (StatusCode::OK, c.clone()),
            _ => (StatusCode::FORBIDDEN, "Forbidden".into()),
        }
    }
    async fn events(headers: HeaderMap) -> StatusCode {
        match headers.get("x-hubspot-signature-v3") {
            Some(_) => StatusCode::OK,
            None => StatusCode::UNAUTHORIZED,
        }
    }
    let app = axum::Router::new()
        .route("/webhook", axum::routing::get(handshake))
        .route("/hubspot/events", axum::routing::post(events));
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
        "MediaCopyFailuresQueueUrl": {"Value": {"Ref": "MediaCopyFailures"}},
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
            "MediaCopyFailures": {"Type": "AWS::SQS::Queue"},
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

/// `baton-local` with `args`, on a clean environment that reaches the emulators' AWS and
/// `settings`: whether it succeeded, and what it printed.
fn baton_local(stack: &Stack, args: &[&str], settings: &[(&str, &str)]) -> (bool, String) {
    let e = &stack.emulators;
    let out = Command::new(env!("CARGO_BIN_EXE_baton-local"))
        .args(args)
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
        .envs(settings.iter().copied())
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

fn doctor(stack: &Stack, name: &str, hubspot: &str, graph: &str) -> (bool, String) {
    baton_local(
        stack,
        &["doctor", "--stack", name],
        &[
            ("BATON_S3_PATH_STYLE", "1"),
            ("WHATSAPP_PHONE_NUMBER_ID", "106540352242922"),
            ("WHATSAPP_BUSINESS_ACCOUNT_ID", WABA),
            ("GRAPH_API_BASE_URL", graph),
            ("HUBSPOT_BASE_URL", hubspot),
        ],
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
    let graph = GraphServer::start(Duration::from_secs(300)).await;
    graph.add_phone_number("106540352242922", "+1 555-010-0001", "Stack Shop");
    graph.set_app_subscriptions(
        "stack-app-secret",
        &["messages", "standby", "messaging_handovers"],
    );
    graph.add_waba(
        WABA,
        &[
            ("2345678901234567", "Customer Support Bot"),
            (graph::APP_ID, "Baton"),
        ],
    );
    let secret = stack
        .secret(
            &json!({"WHATSAPP_APP_SECRET": "stack-app-secret", "WHATSAPP_VERIFY_TOKEN": VERIFY,
            "WHATSAPP_ACCESS_TOKEN": GRAPH_TOKEN, "HUBSPOT_ACCESS_TOKEN": TOKEN,
            "HUBSPOT_APP_SECRET": "stack-hubspot-secret",
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
    let (ok, text) = doctor(&stack, &name, &hubspot.base_url(), &graph.base_url);
    assert!(ok, "{text}");
    for want in [
        "✓ WHATSAPP_APP_SECRET is set (1 secret(s))",
        "✓ the WhatsApp token reads business number +1 555-010-0001 (Stack Shop)",
        "✓ Baton is subscribed to WhatsApp Business Account 102290129340398, beside Customer Support Bot",
        "✓ the HubSpot token works: portal 62515",
        // The stack's parameter, not the default pipeline.
        "✓ tickets go to pipeline 9170, stage 9171",
        "/webhook answers Meta's handshake with the verify token",
        "/hubspot/events accepts an event signed with HUBSPOT_APP_SECRET",
        &format!(
            "✓ table {} is reachable, its stream on",
            stack.store.table()
        ),
        &format!("✓ bucket {} is reachable", stack.objects.bucket()),
        "✓ the HubSpot dead-letter queue is reachable (0 record(s) waiting)",
        "✓ the handoff dead-letter queue is reachable (0 record(s) waiting)",
        "✓ the media copies' dead-letter queue is reachable (0 record(s) waiting)",
        "All 17 checks passed.",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    for secret in [
        "stack-app-secret",
        VERIFY,
        GRAPH_TOKEN,
        TOKEN,
        "stack-agent-secret",
        "stack-hubspot-secret",
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
    let (ok, text) = doctor(&stack, &broken, &hubspot.base_url(), &graph.base_url);
    assert!(!ok, "{text}");
    assert!(
        text.contains("✗ table baton-no-such-table is not reachable"),
        "{text}"
    );
    assert!(
        text.contains("✗ bucket baton-no-such-bucket is not reachable"),
        "{text}"
    );
    assert!(text.contains("2 of 17 checks failed."), "{text}");
    // And a stack that does not exist.
    let (ok, text) = doctor(
        &stack,
        "no-such-stack",
        &hubspot.base_url(),
        &graph.base_url,
    );
    assert!(!ok);
    assert!(
        text.contains("cannot describe stack no-such-stack"),
        "{text}"
    );
}

/// `baton-local hubspot-app` with the emulators' AWS settings.
fn hubspot_app(stack: &Stack, args: &[&str], hubspot: &str) -> (bool, String) {
    let args: Vec<&str> = std::iter::once("hubspot-app")
        .chain(args.iter().copied())
        .collect();
    baton_local(
        stack,
        &args,
        &[
            ("HUBSPOT_APP_SUPPORT_EMAIL", "it@example.com"),
            ("HUBSPOT_BASE_URL", hubspot),
        ],
    )
}

fn read_json(path: std::path::PathBuf) -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_app_writes_the_project_with_the_stacks_events_url_and_the_upload_commands() {
    let Some(stack) = Stack::start().await else {
        return;
    };
    let hubspot = HubspotServer::start(Options::default()).await;
    let api = "https://abc123.execute-api.eu-west-1.amazonaws.com";
    // Before the app is installed the stack's secret holds no HubSpot token.
    let before = stack
        .secret(&json!({"WHATSAPP_APP_SECRET": "s", "WHATSAPP_VERIFY_TOKEN": VERIFY}))
        .await;
    let name = format!("baton-app-{}", std::process::id());
    create_stack(
        &stack.emulators.moto,
        &name,
        json!({"WebhookUrl": format!("{api}/webhook"), "SecretArn": before}),
    )
    .await;
    let dir = std::env::temp_dir().join(format!("baton-hubspot-app-{}", std::process::id()));
    let dir_arg = dir.to_str().unwrap();
    let (ok, text) = hubspot_app(
        &stack,
        &["--stack", &name, "--account", "12345678", "--dir", dir_arg],
        &hubspot.base_url(),
    );
    assert!(ok, "{text}");
    println!("{text}");
    let profile = read_json(dir.join("src/hsprofile.prod.json"));
    assert_eq!(profile["accountId"], 12_345_678);
    assert_eq!(
        profile["variables"]["BATON_WEBHOOK_URL"],
        format!("{api}/hubspot/events")
    );
    assert_eq!(profile["variables"]["SUPPORT_EMAIL"], "it@example.com");
    let app = read_json(dir.join("src/app/app-hsmeta.json"));
    assert_eq!(app["config"]["distribution"], "private");
    assert_eq!(app["config"]["auth"]["type"], "static");
    let webhooks = read_json(dir.join("src/app/webhooks/webhooks-hsmeta.json"));
    assert_eq!(
        webhooks["config"]["settings"]["targetUrl"],
        "${BATON_WEBHOOK_URL}"
    );
    let subscriptions = webhooks["config"]["subscriptions"]["legacyCrmObjects"]
        .as_array()
        .unwrap()
        .clone();
    let reply = |subs: &[serde_json::Value]| {
        subs.iter()
            .find(|s| s["propertyName"] == "baton_whatsapp_reply")
            .unwrap()["active"]
            .clone()
    };
    // The reply property does not exist yet: its subscription waits for the second run.
    assert_eq!(reply(&subscriptions), false);
    assert!(subscriptions.iter().filter(|s| s["active"] == true).count() == 2);
    for want in [
        &format!("its events going to {api}/hubspot/events"),
        "npm install -g @hubspot/cli@latest",
        "hs account auth --account 12345678 --personal-access-key",
        &format!("cd {dir_arg}"),
        "hs project validate --profile prod",
        "hs project upload --profile prod",
        "Install now",
        "The subscription to baton_whatsapp_reply is off for now",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    assert!(
        hubspot
            .property_names("tickets")
            .iter()
            .all(|p| p != "baton_whatsapp_reply")
    );

    // Installed, its token in the secret: the second run creates Baton's properties and turns
    // the reply subscription on.
    let after = stack
        .secret(
            &json!({"WHATSAPP_APP_SECRET": "s", "WHATSAPP_VERIFY_TOKEN": VERIFY,
                         "HUBSPOT_ACCESS_TOKEN": TOKEN}),
        )
        .await;
    let installed = format!("{name}-installed");
    create_stack(
        &stack.emulators.moto,
        &installed,
        json!({"WebhookUrl": format!("{api}/webhook"), "SecretArn": after}),
    )
    .await;
    let (ok, text) = hubspot_app(
        &stack,
        &[
            "--stack",
            &installed,
            "--account",
            "12345678",
            "--dir",
            dir_arg,
        ],
        &hubspot.base_url(),
    );
    assert!(ok, "{text}");
    assert!(text.contains("Baton's properties exist in the portal, so the subscription to baton_whatsapp_reply is on"), "{text}");
    assert!(
        hubspot
            .property_names("tickets")
            .iter()
            .any(|p| p == "baton_whatsapp_reply")
    );
    let webhooks = read_json(dir.join("src/app/webhooks/webhooks-hsmeta.json"));
    let subscriptions = webhooks["config"]["subscriptions"]["legacyCrmObjects"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(reply(&subscriptions), true);
    assert!(!text.contains(TOKEN), "{text}");

    // What HubSpot cannot call is refused, naming why.
    let plain = format!("{name}-http");
    create_stack(
        &stack.emulators.moto,
        &plain,
        json!({"WebhookUrl": "http://127.0.0.1:3000/webhook", "SecretArn": before}),
    )
    .await;
    let (ok, text) = hubspot_app(
        &stack,
        &["--stack", &plain, "--account", "1"],
        &hubspot.base_url(),
    );
    assert!(!ok);
    assert!(
        text.contains("is not HTTPS, and HubSpot only calls HTTPS URLs"),
        "{text}"
    );
    let (ok, text) = hubspot_app(
        &stack,
        &["--stack", &name, "--dir", dir_arg],
        &hubspot.base_url(),
    );
    assert!(!ok);
    assert!(
        text.contains("give --account PORTAL_ID or set HUBSPOT_ACCOUNT_ID"),
        "{text}"
    );
}

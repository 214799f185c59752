//! The `baton-hubspot` binary as Lambda runs it: its settings from the environment and the
//! stack's secret (moto's Secrets Manager), the table on DynamoDB Local, the media bucket on
//! s3s-fs, one stream event from a Lambda Runtime API served here, and HubSpot's test server.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use baton_hubspot::testing::{HubspotServer, Options, TOKEN};
use baton_shared::domain::{ConversationKey, Customer, HandoffRecord, TrailStatus, TranscriptRef};
use baton_shared::objects::{ObjectMeta, ObjectStore, S3Store};
use baton_shared::store::{DynamoDbStore, HandoffStore, TrailStore};
use baton_shared::testing::handoff_record;
use bytes::Bytes;
use serde_json::{Value, json};

const REQUEST_ID: &str = "0f4c2d7e-test-invocation";

/// An emulator's endpoint from the environment scripts/test sets, or `None` (skipped) when it
/// is not running and not required.
fn endpoint(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(e) if !e.is_empty() => Some(e),
        _ if std::env::var_os("BATON_REQUIRE_EMULATORS").is_some() => {
            panic!("{var} is not set but BATON_REQUIRE_EMULATORS is: run scripts/test")
        }
        _ => {
            eprintln!("skipped: {var} is not set (scripts/test starts the emulators)");
            None
        }
    }
}

fn unique(prefix: &str) -> String {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).unwrap();
    format!("{prefix}-{}", hex::encode(b))
}

/// One invocation's event, then nothing: the runtime's next poll waits, as Lambda's does
/// between invocations. What the function answers is kept.
#[derive(Clone, Default)]
struct RuntimeApi {
    event: Arc<Mutex<Option<String>>>,
    answers: Arc<Mutex<Vec<(String, Value)>>>,
}

async fn next(State(api): State<RuntimeApi>) -> Response {
    let Some(event) = api.event.lock().unwrap().take() else {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return StatusCode::GATEWAY_TIMEOUT.into_response();
    };
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 60_000;
    let mut headers = HeaderMap::new();
    headers.insert(
        "lambda-runtime-aws-request-id",
        HeaderValue::from_static(REQUEST_ID),
    );
    headers.insert(
        "lambda-runtime-deadline-ms",
        HeaderValue::from_str(&deadline.to_string()).unwrap(),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:baton-hubspot"),
    );
    (headers, event).into_response()
}

async fn answer(
    State(api): State<RuntimeApi>,
    Path((id, kind)): Path<(String, String)>,
    body: Bytes,
) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    api.answers
        .lock()
        .unwrap()
        .push((format!("{id}/{kind}"), body));
    StatusCode::ACCEPTED
}

async fn init_error(State(api): State<RuntimeApi>, body: Bytes) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    api.answers
        .lock()
        .unwrap()
        .push(("init/error".into(), body));
    StatusCode::ACCEPTED
}

async fn start_runtime_api(event: String) -> (RuntimeApi, String) {
    let api = RuntimeApi::default();
    *api.event.lock().unwrap() = Some(event);
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(answer))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (api, addr.to_string())
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A handoff as the handoff function writes it: a customer with a phone number, a transcript.
fn handoff() -> HandoffRecord {
    let key = ConversationKey::new("106540352242922", "34612345678");
    let customer = Customer {
        wa_id: Some("34612345678".into()),
        profile_name: Some("Lucía".into()),
        display_phone_number: "15550000000".into(),
        ..Default::default()
    };
    let transcript = TranscriptRef {
        key: format!("transcripts/{}.txt", HandoffRecord::id_for(&key, 1)),
        bytes: 40,
        messages: 2,
        agent_events: 0,
    };
    // The session link is signed as of the handoff, so its 30 days run from now.
    let now = baton_shared::clock::now_ms() / 1000;
    handoff_record(key, 1, customer, transcript, Vec::new(), now)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_binary_turns_a_stream_record_into_a_ticket_with_its_deployed_settings() {
    let (Some(ddb), Some(s3), Some(moto)) = (
        endpoint("BATON_TEST_DYNAMODB"),
        endpoint("BATON_TEST_S3"),
        endpoint("BATON_TEST_MOTO"),
    ) else {
        return;
    };
    let creds = aws_sdk_s3::config::Credentials::new("test", "test", None, None, "baton-tests");
    let region = aws_sdk_s3::config::Region::new("us-east-1");

    // The table and bucket, as the stack creates them.
    let table = unique("baton-lambda");
    let store = DynamoDbStore::new(
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                .region(region.clone())
                .endpoint_url(&ddb)
                .credentials_provider(creds.clone())
                .build(),
        ),
        &table,
    );
    store.ensure_table().await.unwrap();
    let bucket = unique("baton-media");
    let objects = S3Store::new(
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .region(region.clone())
                .endpoint_url(&s3)
                .force_path_style(true)
                .credentials_provider(creds.clone())
                .build(),
        ),
        &bucket,
    );
    objects.ensure_bucket().await.unwrap();

    // The handoff the handoff function wrote, and its stream record as Lambda delivers it.
    let record = handoff();
    objects
        .put(
            &record.transcript.key,
            Bytes::from_static(b"[10:00] Customer: quiero hablar con una persona\n"),
            &ObjectMeta::default(),
        )
        .await
        .unwrap();
    assert!(store.save_handoff(&record).await.unwrap());
    let item = store
        .client()
        .get_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("HANDOFF#{}", record.id)),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("HANDOFF".into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .expect("the handoff item");
    let image: serde_dynamo::Item = item.into();
    let event = json!({"Records": [{
        "eventID": "c4ca4238a0b923820dcc509a6f75849b",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1_760_000_001,
            "Keys": {"pk": {"S": format!("HANDOFF#{}", record.id)}, "sk": {"S": "HANDOFF"}},
            "NewImage": image,
            "SequenceNumber": "111000000000000000000001",
            "SizeBytes": 900,
            "StreamViewType": "NEW_IMAGE"
        },
        "eventSourceARN": format!("arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2026-11-24T00:00:00.000")
    }]});

    // The stack's secret, with the private app's token and the session-link key.
    let secrets = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::Config::builder()
            .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
            .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
            .endpoint_url(&moto)
            .credentials_provider(creds)
            .build(),
    );
    let link_secret = "a-session-link-secret-of-the-stack";
    let arn = secrets
        .create_secret()
        .name(unique("baton/hubspot"))
        .secret_string(
            json!({"HUBSPOT_ACCESS_TOKEN": TOKEN, "SESSION_LINK_SECRET": link_secret}).to_string(),
        )
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();

    let hubspot = HubspotServer::start(Options::default()).await;
    let (api, api_addr) = start_runtime_api(event.to_string()).await;
    let child = Command::new(env!("CARGO_BIN_EXE_baton-hubspot"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", &api_addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", "baton-hubspot")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL_DYNAMODB", &ddb)
        .env("AWS_ENDPOINT_URL_S3", &s3)
        .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", &moto)
        .env("BATON_S3_PATH_STYLE", "1")
        .env("TABLE_NAME", &table)
        .env("MEDIA_BUCKET", &bucket)
        .env("BATON_SECRET_ARN", &arn)
        .env("HUBSPOT_BASE_URL", hubspot.base_url())
        // What Lambda sets for template.yaml's LoggingConfig (JSON, INFO): debug may name
        // numbers, info must not.
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("BATON_METRICS_NAMESPACE", "Baton/test-stack")
        .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
        .env(
            "PUBLIC_BASE_URL",
            "https://abc123.execute-api.us-east-1.amazonaws.com",
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start baton-hubspot");
    let mut child = Killed(child);

    let started = tokio::time::Instant::now();
    let answer = loop {
        if let Some(a) = api.answers.lock().unwrap().first().cloned() {
            break a;
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("baton-hubspot exited early: {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no answer from baton-hubspot"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        answer,
        (
            format!("{REQUEST_ID}/response"),
            json!({"batchItemFailures": []})
        ),
        "delivered, nothing reported back to the stream"
    );

    // One ticket with Baton's properties, linked to the new contact, and the note.
    let tickets = hubspot.tickets();
    assert_eq!(tickets.len(), 1);
    let t = &tickets[0].properties;
    assert_eq!(t["baton_handoff_id"], record.id);
    assert!(t["content"].contains("quiero hablar con una persona"));
    let link = &t["baton_session_url"];
    assert!(
        link.starts_with(&format!(
            "https://abc123.execute-api.us-east-1.amazonaws.com/sessions/{}?t=",
            record.id
        )),
        "{link}"
    );
    let token = link.split("?t=").nth(1).unwrap();
    let links =
        baton_shared::session::SessionLinks::new("https://x", link_secret.to_owned().into(), 30);
    assert!(
        links.verify(&record.id, token, baton_shared::clock::now_ms() / 1000),
        "signed with the stack's SESSION_LINK_SECRET"
    );
    assert_eq!(hubspot.contacts().len(), 1);
    assert_eq!(hubspot.contacts()[0].properties["phone"], "+34612345678");
    assert_eq!(hubspot.notes().len(), 1);
    let trail = store.trail(&record.id).await.unwrap().unwrap();
    assert_eq!(trail.status, TrailStatus::Done);

    // The logs name neither the token nor the customer's number.
    child.0.kill().unwrap();
    let out = child.0.wait_with_output_now();
    assert!(!out.contains(TOKEN), "the token is in the logs");
    assert!(
        !out.contains("612345678"),
        "the customer's number is in the logs"
    );
    assert!(out.contains(&record.id), "the logs name the handoff: {out}");
    let mut metrics = Vec::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
        if entry.get("_aws").is_some() {
            metrics.push(entry);
            continue;
        }
        assert!(entry["level"].is_string(), "{line}");
    }
    // The lines about the handoff carry its id as the correlation id (the span's field).
    assert!(
        out.lines()
            .filter(|l| l.contains("HubSpot") && l.contains("\"level\""))
            .any(|l| l.contains(&format!("\"handoff_id\":\"{}\"", record.id))),
        "{out}"
    );
    // One EMF document for the invocation: CloudWatch reads the metrics from it.
    assert_eq!(metrics.len(), 1, "{out}");
    let m = &metrics[0];
    let declared = &m["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(declared["Namespace"], "Baton/test-stack");
    assert_eq!(declared["Dimensions"], json!([["Function"]]));
    assert_eq!(m["Function"], "hubspot");
    assert_eq!(m["HandoffsDelivered"], 1);
    let calls = m["HubspotCalls"].as_u64().unwrap();
    assert_eq!(
        calls as usize,
        hubspot.requests().len(),
        "every HubSpot call counted"
    );
    for d in declared["Metrics"].as_array().unwrap() {
        assert!(m[d["Name"].as_str().unwrap()].is_u64(), "{m}");
    }
}

trait Output {
    fn wait_with_output_now(&mut self) -> String;
}

impl Output for Child {
    fn wait_with_output_now(&mut self) -> String {
        use std::io::Read;
        let _ = self.wait();
        let mut text = String::new();
        if let Some(mut o) = self.stdout.take() {
            let _ = o.read_to_string(&mut text);
        }
        text.push('\n');
        if let Some(mut e) = self.stderr.take() {
            let _ = e.read_to_string(&mut text);
        }
        text
    }
}

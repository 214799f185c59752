//! Shared test plumbing: DynamoDB Local clients and tables, signed requests to the webhook handler.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use baton_local::redb_store::RedbStore;
pub use baton_shared::store::RequestCounter;
use baton_shared::store::{DynamoDbStore, Store};
use baton_shared::whatsapp::sign;
use baton_webhook::Webhook;
use baton_webhook::config::WebhookSecrets;
use bytes::Bytes;
use http::{Request, StatusCode};

pub const APP_SECRET: &str = "test-app-secret";
pub const OLD_APP_SECRET: &str = "rotated-out-app-secret";
pub const VERIFY_TOKEN: &str = "test-verify-token";

pub fn unique(prefix: &str) -> String {
    let mut b = [0u8; 6];
    random_bytes(&mut b);
    format!("{prefix}-{}", hex(&b))
}

fn random_bytes(buf: &mut [u8]) {
    use std::hash::{BuildHasher, Hasher};
    for chunk in buf.chunks_mut(8) {
        let v = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
            .to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// moto's endpoint (Secrets Manager, SQS, CloudFormation), or `None` (test skipped) when it does
/// not run and is not required.
pub fn moto_endpoint() -> Option<String> {
    match std::env::var("BATON_TEST_MOTO") {
        Ok(e) if !e.is_empty() => Some(e),
        _ if std::env::var_os("BATON_REQUIRE_EMULATORS").is_some() => {
            panic!("BATON_TEST_MOTO is not set but BATON_REQUIRE_EMULATORS is: run scripts/test")
        }
        _ => {
            eprintln!("skipped: moto is not running (scripts/test starts it)");
            None
        }
    }
}

/// DynamoDB Local's endpoint, or `None` (test skipped) when no emulator runs and none is required.
pub fn dynamodb_endpoint() -> Option<String> {
    match std::env::var("BATON_TEST_DYNAMODB") {
        Ok(e) if !e.is_empty() => Some(e),
        _ if std::env::var_os("BATON_REQUIRE_EMULATORS").is_some() => {
            panic!(
                "BATON_TEST_DYNAMODB is not set but BATON_REQUIRE_EMULATORS is: run scripts/test"
            )
        }
        _ => {
            eprintln!("skipped: DynamoDB Local is not running (scripts/test starts it)");
            None
        }
    }
}

pub fn dynamodb_config(endpoint: &str, counter: &RequestCounter) -> aws_sdk_dynamodb::Config {
    aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "baton-tests"))
        .interceptor(counter.clone())
        .build()
}

/// A fresh table on DynamoDB Local, created exactly as baton-local creates it.
pub async fn dynamodb_store() -> Option<(DynamoDbStore, RequestCounter)> {
    let endpoint = dynamodb_endpoint()?;
    let counter = RequestCounter::default();
    let client = aws_sdk_dynamodb::Client::from_conf(dynamodb_config(&endpoint, &counter));
    let store = DynamoDbStore::new(client, unique("baton-test"));
    store
        .ensure_table()
        .await
        .expect("create table on DynamoDB Local");
    counter.take();
    Some((store, counter))
}

pub fn embedded_store() -> RedbStore {
    let dir = std::env::temp_dir().join(unique("baton-embedded"));
    RedbStore::open(&dir).expect("open embedded store")
}

pub fn secrets() -> WebhookSecrets {
    WebhookSecrets::from_source(&[
        (
            "WHATSAPP_APP_SECRET",
            &*format!("{APP_SECRET},{OLD_APP_SECRET}"),
        ),
        ("WHATSAPP_VERIFY_TOKEN", VERIFY_TOKEN),
        ("AGENT_EVENTS_SECRET", AGENT_SECRET),
    ])
    .unwrap()
}

pub const AGENT_SECRET: &str = "test-agent-events-secret";

/// A request to `/agent/events` signed with the agent events secret.
pub fn agent_post(body: impl Into<Bytes>) -> Request<Bytes> {
    let body = body.into();
    let sig = sign(AGENT_SECRET, &body);
    Request::post("/agent/events")
        .header("content-type", "application/json")
        .header("x-baton-signature-256", sig)
        .body(body)
        .unwrap()
}

/// s3s-fs's endpoint, or `None` (test skipped) when it does not run and is not required.
pub fn s3_endpoint() -> Option<String> {
    match std::env::var("BATON_TEST_S3") {
        Ok(e) if !e.is_empty() => Some(e),
        _ if std::env::var_os("BATON_REQUIRE_EMULATORS").is_some() => {
            panic!("BATON_TEST_S3 is not set but BATON_REQUIRE_EMULATORS is: run scripts/test")
        }
        _ => {
            eprintln!("skipped: s3s-fs is not running (scripts/test starts it)");
            None
        }
    }
}

/// A fresh bucket on s3s-fs, with SigV4 credentials it checks.
pub async fn s3_store() -> Option<baton_shared::objects::S3Store> {
    let endpoint = s3_endpoint()?;
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new("test", "test", None, None, "baton-tests"))
        .build();
    let store = baton_shared::objects::S3Store::new(
        aws_sdk_s3::Client::from_conf(conf),
        unique("baton-media"),
    );
    store
        .ensure_bucket()
        .await
        .expect("create bucket on s3s-fs");
    Some(store)
}

pub fn webhook(store: Arc<dyn Store>) -> Webhook {
    let clock = Arc::new(AtomicU32::new(0));
    // Arrival times increase by one millisecond per delivery, as on a real clock.
    Webhook::with_clock(
        store,
        secrets(),
        Arc::new(move || 1_800_000_000_000 + i64::from(clock.fetch_add(1, Ordering::SeqCst))),
    )
}

pub fn post(body: impl Into<Bytes>, signatures: &[&str]) -> Request<Bytes> {
    let mut req = Request::post("/webhook").header("content-type", "application/json");
    for s in signatures {
        req = req.header("x-hub-signature-256", *s);
    }
    req.body(body.into()).unwrap()
}

pub fn signed(body: impl Into<Bytes>) -> Request<Bytes> {
    let body = body.into();
    let sig = sign(APP_SECRET, &body);
    post(body, &[&sig])
}

/// Sends a request to the handler; returns the status and the body as JSON (or a JSON string).
pub async fn call(app: &Webhook, req: Request<Bytes>) -> (StatusCode, serde_json::Value) {
    let resp = app.handle(req).await;
    let status = resp.status();
    let body = resp.into_body();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into_owned()));
    (status, json)
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/whatsapp/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Settings given as name/value pairs.
pub struct Vars(pub Vec<(&'static str, String)>);

impl baton_shared::config::Source for Vars {
    fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    }
}

//! Running a function's binary as Lambda runs it: a Lambda Runtime API served by the test hands
//! it one event and keeps its answer; the process gets the environment Lambda and template.yaml
//! give it, and its logs (stdout and stderr) are read back.

use std::collections::VecDeque;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

/// The invocation's request id.
pub const REQUEST_ID: &str = "0f4c2d7e-test-invocation";

/// An emulator's endpoint from the environment scripts/test sets, or `None` (the test skips)
/// when it is not running and not required (`BATON_REQUIRE_EMULATORS`).
pub fn emulator(var: &str) -> Option<String> {
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

/// The invocations' events in turn, then nothing: the runtime's next poll waits, as Lambda's
/// does between invocations. What the function answers is kept, in order.
#[derive(Clone)]
pub struct RuntimeApi {
    events: Arc<Mutex<VecDeque<String>>>,
    function: String,
    pub answers: Arc<Mutex<Vec<(String, Value)>>>,
    /// `host:port`, for `AWS_LAMBDA_RUNTIME_API`.
    pub addr: String,
}

async fn next(State(api): State<RuntimeApi>) -> Response {
    let Some(event) = api.events.lock().unwrap().pop_front() else {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return StatusCode::GATEWAY_TIMEOUT.into_response();
    };
    let deadline = baton_shared::clock::now_ms() + 60_000;
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
        HeaderValue::from_str(&format!(
            "arn:aws:lambda:us-east-1:123456789012:function:{}",
            api.function
        ))
        .unwrap(),
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

impl RuntimeApi {
    /// Serves the Runtime API for `function`, one invocation per event.
    pub async fn start(function: &str, events: Vec<String>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = RuntimeApi {
            events: Arc::new(Mutex::new(events.into())),
            function: function.to_owned(),
            answers: Arc::default(),
            addr: listener.local_addr().unwrap().to_string(),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(answer))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        api
    }

    /// The binary `bin` with the environment Lambda gives a function on provided.al2023 (JSON
    /// logs at INFO, as template.yaml's `LoggingConfig` asks), test credentials and region, and
    /// its output piped. The caller adds the function's own settings.
    pub fn command(&self, bin: &str) -> Command {
        let mut c = Command::new(bin);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", &self.addr)
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.function)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// The function's `n`th answer, from 0 (`<request id>/response`, or `init/error`), waiting
    /// up to a minute; panics if the process exits first.
    pub async fn answer(&self, n: usize, child: &mut Running) -> (String, Value) {
        let started = tokio::time::Instant::now();
        loop {
            if let Some(a) = self.answers.lock().unwrap().get(n).cloned() {
                return a;
            }
            if let Ok(Some(status)) = child.0.try_wait() {
                panic!("{} exited early: {status}", self.function);
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no answer from {}",
                self.function
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A started function process, killed when dropped.
pub struct Running(pub Child);

impl Running {
    /// Stops the process and returns what it wrote, stdout then stderr.
    pub fn stop_and_read(&mut self) -> String {
        use std::io::Read;
        let _ = self.0.kill();
        let _ = self.0.wait();
        let mut text = String::new();
        if let Some(mut o) = self.0.stdout.take() {
            let _ = o.read_to_string(&mut text);
        }
        text.push('\n');
        if let Some(mut e) = self.0.stderr.take() {
            let _ = e.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A name no other test run uses.
pub fn unique(prefix: &str) -> String {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).unwrap();
    format!("{prefix}-{}", hex::encode(b))
}

fn credentials() -> aws_sdk_s3::config::Credentials {
    aws_sdk_s3::config::Credentials::new("test", "test", None, None, "baton-tests")
}

/// A new table on DynamoDB Local (`ddb`) and a new bucket on the S3 server (`s3`), as the stack
/// creates them.
async fn stack_storage(
    ddb: &str,
    s3: &str,
) -> (
    baton_shared::store::DynamoDbStore,
    baton_shared::objects::S3Store,
) {
    let region = aws_sdk_s3::config::Region::new("us-east-1");
    let store = baton_shared::store::DynamoDbStore::new(
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                .region(region.clone())
                .endpoint_url(ddb)
                .credentials_provider(credentials())
                .build(),
        ),
        unique("baton-lambda"),
    );
    store.ensure_table().await.unwrap();
    let objects = baton_shared::objects::S3Store::new(
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .region(region)
                .endpoint_url(s3)
                .force_path_style(true)
                .credentials_provider(credentials())
                .build(),
        ),
        unique("baton-media"),
    );
    objects.ensure_bucket().await.unwrap();
    (store, objects)
}

/// A new secret holding `value` (a JSON object) in moto's Secrets Manager at `moto`; its ARN.
async fn stack_secret(moto: &str, value: &Value) -> String {
    let secrets = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::Config::builder()
            .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
            .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
            .endpoint_url(moto)
            .credentials_provider(credentials())
            .build(),
    );
    secrets
        .create_secret()
        .name(unique("baton/secret"))
        .secret_string(value.to_string())
        .send()
        .await
        .unwrap()
        .arn
        .unwrap()
}

/// The three emulators scripts/test starts (DynamoDB Local, s3s-fs, moto), or `None` (skipped).
pub struct Emulators {
    pub dynamodb: String,
    pub s3: String,
    pub moto: String,
}

impl Emulators {
    pub fn from_env() -> Option<Self> {
        Some(Self {
            dynamodb: emulator("BATON_TEST_DYNAMODB")?,
            s3: emulator("BATON_TEST_S3")?,
            moto: emulator("BATON_TEST_MOTO")?,
        })
    }
}

/// What a deployed stack gives a function, on the emulators: a new table and bucket, secrets on
/// request, and the settings template.yaml sets.
pub struct Stack {
    pub emulators: Emulators,
    pub store: baton_shared::store::DynamoDbStore,
    pub objects: baton_shared::objects::S3Store,
}

impl Stack {
    /// `None` (the test skips) when the emulators are not running and not required.
    pub async fn start() -> Option<Self> {
        let emulators = Emulators::from_env()?;
        let (store, objects) = stack_storage(&emulators.dynamodb, &emulators.s3).await;
        Some(Self {
            emulators,
            store,
            objects,
        })
    }

    /// A new secret of the stack holding `value` (a JSON object); its ARN.
    pub async fn secret(&self, value: &Value) -> String {
        stack_secret(&self.emulators.moto, value).await
    }

    /// [`RuntimeApi::command`] with the emulators as the AWS endpoints and what template.yaml
    /// sets for every function: the table, the bucket, a 30-day retention and the metrics
    /// namespace `Baton/test-stack`. The caller adds `BATON_SECRET_ARN` and the function's own.
    pub fn command(&self, api: &RuntimeApi, bin: &str) -> Command {
        let mut c = api.command(bin);
        c.env("AWS_ENDPOINT_URL_DYNAMODB", &self.emulators.dynamodb)
            .env("AWS_ENDPOINT_URL_S3", &self.emulators.s3)
            .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", &self.emulators.moto)
            .env("BATON_S3_PATH_STYLE", "1")
            .env("TABLE_NAME", self.store.table())
            .env("MEDIA_BUCKET", self.objects.bucket())
            .env("RETENTION_DAYS", "30")
            .env("BATON_METRICS_NAMESPACE", "Baton/test-stack");
        c
    }
}

/// A function's output read as Lambda's JSON log lines: the log entries and the EMF metric
/// documents. Panics at a line that is not JSON.
pub fn json_lines(out: &str) -> (Vec<Value>, Vec<Value>) {
    let (mut logs, mut metrics) = (Vec::new(), Vec::new());
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
        if entry.get("_aws").is_some() {
            metrics.push(entry);
        } else {
            logs.push(entry);
        }
    }
    (logs, metrics)
}

/// A DynamoDB stream event (what Lambda's event source mapping delivers) with one `INSERT`
/// record: the item at `pk`/`sk`, read back from the table as its new image.
pub async fn stream_insert(
    store: &baton_shared::store::DynamoDbStore,
    pk: &str,
    sk: &str,
) -> Value {
    use aws_sdk_dynamodb::types::AttributeValue;
    let item = store
        .client()
        .get_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(pk.to_owned()))
        .key("sk", AttributeValue::S(sk.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_else(|| panic!("no item {pk} {sk}"));
    let image: serde_dynamo::Item = item.into();
    serde_json::json!({"Records": [{
        "eventID": "c4ca4238a0b923820dcc509a6f75849b",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1_760_000_001,
            "Keys": {"pk": {"S": pk}, "sk": {"S": sk}},
            "NewImage": image,
            "SequenceNumber": "111000000000000000000001",
            "SizeBytes": 900,
            "StreamViewType": "NEW_AND_OLD_IMAGES"
        },
        "eventSourceARN": format!(
            "arn:aws:dynamodb:us-east-1:123456789012:table/{}/stream/2026-11-24T00:00:00.000",
            store.table()
        )
    }]})
}

/// An API Gateway HTTP API (payload 2.0) event for `method path?query`, matched by `route`
/// (`/sessions/{id}`), with `headers` and a body (`true`: base64-encoded, as API Gateway sends
/// binary bodies).
pub fn http_api_event(
    method: &str,
    route: &str,
    path: &str,
    query: &str,
    headers: Value,
    body: Option<(&str, bool)>,
) -> Value {
    let mut event = serde_json::json!({
        "version": "2.0",
        "routeKey": format!("{method} {route}"),
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123", "requestId": "req-1", "routeKey": format!("{method} {route}"),
            "stage": "$default", "time": "23/Nov/2026:22:00:00 +0000", "timeEpoch": 1_795_471_200_000u64,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7",
                     "userAgent": "facebookexternalua"}
        },
        "isBase64Encoded": false
    });
    if let Some((b, base64)) = body {
        event["body"] = Value::String(b.to_owned());
        event["isBase64Encoded"] = Value::Bool(base64);
    }
    event
}

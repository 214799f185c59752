//! Release binary size and init time — process start to its first request for an event from a
//! local Lambda Runtime API endpoint — of the webhook function, beside a hello-world
//! `lambda_runtime` binary built the same way (target: at most 1.5x). Also measured: start to
//! the first response when an event is already waiting (a cold start caused by a request), where
//! the webhook answers Meta's verification handshake.
//!
//! Run: `scripts/bench`, which first builds `--release` the webhook and the `hello_lambda` example.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use tokio::sync::mpsc;

const RUNS: usize = 30;

#[derive(Debug)]
enum Seen {
    Next(Instant),
    Response(Instant, String),
    Error(String),
}

/// The fake Runtime API: hands out the queued event (if any) on the first `next`, then holds.
#[derive(Clone)]
struct Api {
    event: Arc<Mutex<Option<String>>>,
    seen: mpsc::UnboundedSender<Seen>,
}

async fn next(State(api): State<Api>) -> (StatusCode, HeaderMap, String) {
    let _ = api.seen.send(Seen::Next(Instant::now()));
    let event = api.event.lock().unwrap().take();
    let Some(event) = event else {
        // Only the time to ask for an event is measured.
        tokio::time::sleep(Duration::from_secs(60)).await;
        return (StatusCode::OK, HeaderMap::new(), String::new());
    };
    let mut h = HeaderMap::new();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", "req-1"),
        ("lambda-runtime-deadline-ms", "9999999999999"),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:bench",
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000",
        ),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    (StatusCode::OK, h, event)
}

async fn response(State(api): State<Api>, body: String) -> StatusCode {
    let _ = api.seen.send(Seen::Response(Instant::now(), body));
    StatusCode::ACCEPTED
}

async fn error(State(api): State<Api>, body: String) -> StatusCode {
    let _ = api.seen.send(Seen::Error(body));
    StatusCode::ACCEPTED
}

struct Bench {
    addr: String,
    api: Api,
    seen: mpsc::UnboundedReceiver<Seen>,
}

impl Bench {
    async fn recv(&mut self) -> Seen {
        match tokio::time::timeout(Duration::from_secs(10), self.seen.recv()).await {
            Ok(Some(Seen::Error(e))) => panic!("the function reported an error: {e}"),
            Ok(Some(s)) => s,
            _ => panic!("no word from the function within 10 s"),
        }
    }

    /// Starts `binary`; returns (start → first `next`, start → first response if `event`).
    async fn run(
        &mut self,
        binary: &Path,
        event: Option<&str>,
    ) -> (Duration, Option<(Duration, String)>) {
        while self.seen.try_recv().is_ok() {}
        *self.api.event.lock().unwrap() = event.map(str::to_owned);
        let start = Instant::now();
        let mut child = Command::new(binary)
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", &self.addr)
            .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .env("AWS_SESSION_TOKEN", "bench")
            .env("WHATSAPP_APP_SECRET", "bench-secret")
            .env("WHATSAPP_VERIFY_TOKEN", "bench-token")
            .env("TABLE_NAME", "bench")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let Seen::Next(at) = self.recv().await else {
            panic!("expected a request for an event")
        };
        let init = at - start;
        let first = if event.is_some() {
            match self.recv().await {
                Seen::Response(at, body) => Some((at - start, body)),
                other => panic!("expected a response, got {other:?}"),
            }
        } else {
            None
        };
        let _ = child.kill();
        let _ = child.wait();
        (init, first)
    }
}

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(v[v.len() / 2]), ms(v[v.len() * 9 / 10]))
}

const HANDSHAKE_EVENT: &str = r#"{"version":"2.0","routeKey":"GET /webhook","rawPath":"/webhook",
"rawQueryString":"hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=bench-token","headers":{},
"requestContext":{"accountId":"123456789012","apiId":"api","domainName":"api.example.com","domainPrefix":"api",
"http":{"method":"GET","path":"/webhook","protocol":"HTTP/1.1","sourceIp":"203.0.113.7","userAgent":"facebookexternalua"},
"requestId":"r","routeKey":"GET /webhook","stage":"$default","time":"23/Nov/2026:22:00:00 +0000","timeEpoch":0},
"isBase64Encoded":false}"#;

#[tokio::main]
async fn main() {
    let webhook = PathBuf::from(env!("CARGO_BIN_EXE_baton-webhook"));
    let hello = webhook
        .parent()
        .unwrap()
        .join("examples")
        .join("hello_lambda");
    if !hello.exists() {
        eprintln!(
            "{} is missing: build it first with\n  cargo build --release -p baton-webhook --example hello_lambda\n(scripts/bench does)",
            hello.display()
        );
        std::process::exit(2);
    }

    let (tx, rx) = mpsc::unbounded_channel();
    let api = Api {
        event: Arc::new(Mutex::new(None)),
        seen: tx,
    };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(error))
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut bench = Bench {
        addr,
        api,
        seen: rx,
    };

    let (mut init_h, mut init_w, mut resp_h, mut resp_w) = (vec![], vec![], vec![], vec![]);
    for _ in 0..RUNS {
        init_h.push(bench.run(&hello, None).await.0);
        init_w.push(bench.run(&webhook, None).await.0);
        let (_, first) = bench.run(&hello, Some(r#"{"hello":"world"}"#)).await;
        resp_h.push(first.unwrap().0);
        let (_, first) = bench.run(&webhook, Some(HANDSHAKE_EVENT)).await;
        let (t, body) = first.unwrap();
        assert!(
            body.contains("1158201444"),
            "the handshake was answered: {body}"
        );
        resp_w.push(t);
    }
    let size = |p: &Path| std::fs::metadata(p).unwrap().len() as f64 / (1024.0 * 1024.0);
    let (ih, ih90) = stats(init_h);
    let (iw, iw90) = stats(init_w);
    let (rh, rh90) = stats(resp_h);
    let (rw, rw90) = stats(resp_w);
    println!(
        "Release binaries ({}; stripped, lto, codegen-units=1), {RUNS} cold starts each, median / p90",
        std::env::consts::ARCH
    );
    println!(
        "{:<15} {:>10} {:>22} {:>26}",
        "binary", "size", "init (to first next)", "first response (queued)"
    );
    println!(
        "{:<15} {:>6.2} MiB {:>11.2} / {:>5.2} ms {:>15.2} / {:>5.2} ms",
        "hello_lambda",
        size(&hello),
        ih,
        ih90,
        rh,
        rh90
    );
    println!(
        "{:<15} {:>6.2} MiB {:>11.2} / {:>5.2} ms {:>15.2} / {:>5.2} ms",
        "baton-webhook",
        size(&webhook),
        iw,
        iw90,
        rw,
        rw90
    );
    println!(
        "{:<15} {:>9.2}x {:>11.2}x / {:>4.2}x {:>15.2}x / {:>4.2}x",
        "ratio",
        size(&webhook) / size(&hello),
        iw / ih,
        iw90 / ih90,
        rw / rh,
        rw90 / rh90
    );
}

//! Handler time per delivery, without the store, against the floor of HMAC-SHA256 plus
//! `serde_json::from_slice` of the same bytes (target: within 2x); and, when DynamoDB Local runs
//! (`BATON_TEST_DYNAMODB`, as `scripts/bench` sets it), DynamoDB requests per delivery
//! (target: 1 for up to 25 messages).
//!
//! Run: `scripts/bench` (or `cargo bench -p baton-webhook --bench handler`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use baton_shared::domain::*;
use baton_shared::store::*;
use baton_shared::whatsapp::sign;
use baton_testkit::bodies;
use baton_webhook::Webhook;
use baton_webhook::config::WebhookSecrets;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};

const SECRET: &str = "bench-app-secret";

/// Takes every batch and stores nothing: the benchmark measures the handler alone.
struct NullStore;

#[async_trait]
impl DeliveryStore for NullStore {
    async fn write_batch(&self, batch: &DeliveryBatch) -> Result<WriteReport, StoreError> {
        Ok(WriteReport {
            delivery_new: true,
            messages_new: batch.messages.len() as u32,
            statuses_applied: batch.statuses.len() as u32,
            requests: 0,
            ..WriteReport::default()
        })
    }
}

#[async_trait]
impl ConversationReader for NullStore {
    async fn conversation(&self, _: &ConversationKey) -> Result<Option<Conversation>, StoreError> {
        Ok(None)
    }
    async fn timeline_page(
        &self,
        _: &ConversationKey,
        _: Option<&str>,
        _: usize,
    ) -> Result<TimelinePage, StoreError> {
        Ok(TimelinePage::default())
    }
    async fn status(
        &self,
        _: &ConversationKey,
        _: &str,
    ) -> Result<Option<StatusRecord>, StoreError> {
        Ok(None)
    }
}

#[async_trait]
impl DeliveryLog for NullStore {
    async fn delivery(&self, _: &DeliveryId) -> Result<Option<RawDelivery>, StoreError> {
        Ok(None)
    }
    async fn replayable_deliveries(&self, _: usize) -> Result<Vec<DeliveryId>, StoreError> {
        Ok(Vec::new())
    }
}

#[async_trait]
impl AgentEventStore for NullStore {
    async fn write_agent_events(
        &self,
        events: &[AgentEventRecord],
    ) -> Result<AgentWriteReport, StoreError> {
        Ok(AgentWriteReport {
            events_new: events.len() as u32,
            ..AgentWriteReport::default()
        })
    }
}

/// The bench's deliveries carry no failed reply statuses: nothing reaches these.
#[async_trait]
impl TicketStore for NullStore {
    async fn save_ticket_event(&self, _: &TicketEvent) -> Result<bool, StoreError> {
        Ok(true)
    }
    async fn ticket_event(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Option<(TicketEvent, EventTrail)>, StoreError> {
        Ok(None)
    }
    async fn ticket_events(&self, _: &str) -> Result<Vec<(TicketEvent, EventTrail)>, StoreError> {
        Ok(Vec::new())
    }
    async fn save_event_trail(&self, _: &str, _: &str, _: &EventTrail) -> Result<(), StoreError> {
        Ok(())
    }
    async fn unfinished_events(&self, _: usize) -> Result<Vec<(String, String)>, StoreError> {
        Ok(Vec::new())
    }
    async fn link_ticket(&self, _: &TicketLink) -> Result<(), StoreError> {
        Ok(())
    }
    async fn ticket_link(&self, _: &str) -> Result<Option<TicketLink>, StoreError> {
        Ok(None)
    }
    async fn close_episode(&self, _: &ConversationKey, _: u32) -> Result<bool, StoreError> {
        Ok(false)
    }
}

/// A compact, Meta-shaped delivery of `n` text messages from one customer, with realistic text.
fn delivery(n: usize, tag: &str) -> Vec<u8> {
    let msgs: Vec<Value> = (0..n)
        .map(|i| {
            bodies::text(
                &format!("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAz{tag}{i:05}"),
                "16505551234",
                1_750_000_000 + i as i64,
                "Hi, my order #4471 arrived damaged \u{2014} the box was open. Can I get a replacement?",
            )
        })
        .collect();
    bodies::delivery(
        "106540352242922",
        json!([{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234", "user_id": "US.13491208655302741918"}]),
        Value::Array(msgs),
        Value::Null,
    )
}

fn request(body: &Bytes) -> http::Request<Bytes> {
    http::Request::post("/webhook")
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sign(SECRET, body))
        .body(body.clone())
        .unwrap()
}

fn floor(body: &[u8]) -> usize {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let v: Value = serde_json::from_slice(body).unwrap();
    tag.len() + v.as_object().map_or(0, serde_json::Map::len)
}

/// Median time per iteration over `samples` runs of `iters` iterations each.
fn measure(samples: usize, iters: usize, mut f: impl FnMut()) -> Duration {
    for _ in 0..iters {
        f();
    }
    let mut times: Vec<Duration> = (0..samples)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed() / iters as u32
        })
        .collect();
    times.sort();
    times[samples / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let secrets = WebhookSecrets::from_source(&[
        ("WHATSAPP_APP_SECRET", SECRET),
        ("WHATSAPP_VERIFY_TOKEN", "t"),
    ])
    .unwrap();
    let app = Webhook::new(Arc::new(NullStore), secrets);

    println!("Handler time per delivery, store excluded (median of 21 samples)");
    println!(
        "{:<12} {:>9} {:>14} {:>14} {:>7}",
        "delivery", "bytes", "floor", "handler", "ratio"
    );
    for (n, iters) in [(1usize, 4000usize), (100, 100)] {
        let body = Bytes::from(delivery(n, "A"));
        // Sanity: the handler really parses and stores every message.
        let resp = rt.block_on(app.handle(request(&body)));
        let answer: Value = serde_json::from_slice(resp.body()).unwrap();
        assert_eq!(answer["messages_new"].as_u64(), Some(n as u64));

        let floor_t = measure(21, iters, || {
            black_box(floor(black_box(&body)));
        });
        let req = request(&body);
        let handler_t = measure(21, iters, || {
            let r = req.clone();
            black_box(rt.block_on(app.handle(r)));
        });
        println!(
            "{:<12} {:>9} {:>11.1} µs {:>11.1} µs {:>6.2}x",
            format!("{n} message{}", if n == 1 { "" } else { "s" }),
            body.len(),
            floor_t.as_secs_f64() * 1e6,
            handler_t.as_secs_f64() * 1e6,
            handler_t.as_secs_f64() / floor_t.as_secs_f64()
        );
    }

    println!();
    match std::env::var("BATON_TEST_DYNAMODB") {
        Ok(endpoint) if !endpoint.is_empty() => rt.block_on(dynamodb_requests(&endpoint)),
        _ => println!(
            "DynamoDB requests per delivery: skipped (set BATON_TEST_DYNAMODB, or run scripts/bench)"
        ),
    }
}

async fn dynamodb_requests(endpoint: &str) {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let counter = RequestCounter::default();
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "bench"))
        .interceptor(counter.clone())
        .build();
    let table = format!("baton-bench-{}", std::process::id());
    let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::from_conf(conf), table);
    store.ensure_table().await.expect("create the bench table");
    let secrets = WebhookSecrets::from_source(&[
        ("WHATSAPP_APP_SECRET", SECRET),
        ("WHATSAPP_VERIFY_TOKEN", "t"),
    ])
    .unwrap();
    let app = Webhook::new(Arc::new(store), secrets);
    println!("DynamoDB requests per delivery (DynamoDB Local, counted by an SDK interceptor)");
    println!(
        "{:<14} {:>10} {:>12} {:>16}",
        "messages", "first", "redelivery", "wall, first"
    );
    for n in [1usize, 10, 25, 26, 100, 1000] {
        let body = Bytes::from(delivery(n, &format!("R{n}x")));
        counter.take();
        let start = Instant::now();
        let resp = app.handle(request(&body)).await;
        let wall = start.elapsed();
        assert_eq!(resp.status(), 200);
        let first = counter.take();
        app.handle(request(&body)).await;
        let again = counter.take();
        println!(
            "{n:<14} {first:>10} {again:>12} {:>13.1} ms",
            wall.as_secs_f64() * 1e3
        );
    }
}

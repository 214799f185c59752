//! Session page cost: rendering the page of a 1,000-entry conversation (texts, images with their
//! copies, reactions, locations, agent replies, reasoning and tool calls) from the embedded
//! store, with S3 presigned URLs minted for every file (SigV4, no network), against the
//! baseline of reading the same timeline and building its transcript (the handoff function's
//! work on the same data). Median of repeated runs; prints the page size too.
//!
//! Run: `scripts/bench` (or `cargo bench -p baton-webhook --bench session`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use baton_local::redb_store::RedbStore;
use baton_shared::domain::*;
use baton_shared::media_keys::object_key;
use baton_shared::objects::{ObjectStore, S3Store};
use baton_shared::session::SessionLinks;
use baton_shared::store::{AgentEventStore, ConversationReader, DeliveryStore, HandoffStore};
use baton_shared::transcript::Transcript;
use baton_webhook::session_page::{Answer, SessionPages};
use serde_json::json;

const PNID: &str = "106540352242922";
const CUSTOMER: &str = "16505551234";
const ENTRIES: usize = 1_000;
const RUNS: usize = 21;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn conversation(store: &RedbStore) -> HandoffRecord {
    let key = ConversationKey::new(PNID, CUSTOMER);
    let t0 = 1_763_990_000i64;
    let mut messages = Vec::new();
    let mut events = Vec::new();
    let mut media = Vec::new();
    for i in 0..ENTRIES {
        let ts = t0 + i as i64;
        if i % 5 == 4 {
            let kind = ["message", "reasoning", "tool_call"][(i / 5) % 3];
            let mut e = json!({"id": format!("e{i}"), "type": kind, "phone_number_id": PNID,
                "customer": CUSTOMER, "timestamp": ts, "text": "Let me check the status of your order, one moment please."});
            if kind == "tool_call" {
                e["tool"] = json!({"name": "lookup_order", "input": {"order": "48213"},
                    "output": {"status": "in transit", "eta": "Friday"}, "duration_ms": 85});
            }
            events.push(e);
            continue;
        }
        let wamid = format!("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAz{i:06}");
        let body = match i % 10 {
            1 => {
                let k = object_key(&key, &wamid, "photo.jpg");
                media.push(baton_testkit::fixtures::copied_file(
                    &key,
                    &wamid,
                    &k,
                    "photo.jpg",
                    "image/jpeg",
                    150_000,
                ));
                json!({"type": "image", "image": {"id": format!("m{i}"), "mime_type": "image/jpeg", "sha256": "x", "caption": "the box"}})
            }
            3 => json!({"type": "reaction", "reaction": {"message_id": "wamid.x", "emoji": "👍"}}),
            7 => {
                json!({"type": "location", "location": {"latitude": 38.7, "longitude": -9.1, "name": "Shop"}})
            }
            _ => {
                json!({"type": "text", "text": {"body": "Hi, my order 48213 still has not arrived and the tracking page shows nothing new since Monday."}})
            }
        };
        let mut m = body;
        m["from"] = json!(CUSTOMER);
        m["id"] = json!(wamid);
        m["timestamp"] = json!(ts.to_string());
        messages.push(m);
    }
    for chunk in messages.chunks(100) {
        let body = baton_testkit::bodies::delivery(
            PNID,
            baton_testkit::bodies::contact(CUSTOMER, "Maria Lopez"),
            json!(chunk),
            json!([]),
        );
        let batch = build_batch(body.into(), t0 * 1000, BatchOrigin::Webhook);
        store.write_batch(&batch).await.unwrap();
    }
    for chunk in events.chunks(100) {
        let events = baton_shared::agent::parse_events(
            json!({ "events": chunk }).to_string().as_bytes(),
            t0 * 1000,
        )
        .unwrap();
        store.write_agent_events(&events).await.unwrap();
    }
    for m in &media {
        store.save_media(m).await.unwrap();
    }
    let transcript = TranscriptRef {
        key: "transcripts/bench.txt".into(),
        bytes: 0,
        messages: ENTRIES as u32,
        agent_events: 0,
        last_order_key: None,
    };
    let customer = Customer {
        wa_id: Some(CUSTOMER.into()),
        profile_name: Some("Maria Lopez".into()),
        ..Default::default()
    };
    let h = baton_testkit::fixtures::handoff_record(key, 1, customer, transcript, media, t0);
    store.save_handoff(&h).await.unwrap();
    h
}

async fn transcript(store: &RedbStore, h: &HandoffRecord) -> usize {
    let mut t = Transcript::new("bench", "Maria Lopez");
    let mut after: Option<String> = None;
    loop {
        let page = store
            .timeline_page(&h.conversation, after.as_deref(), 500)
            .await
            .unwrap();
        for e in &page.entries {
            t.push(e);
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let copies = h
        .media
        .iter()
        .map(|m| (m.wamid.clone(), m.clone()))
        .collect();
    t.finish()
        .text(&copies, &|k| format!("s3://bucket/{k}"))
        .len()
}

#[tokio::main]
async fn main() {
    let dir = std::env::temp_dir().join(format!("baton-bench-session-{}", std::process::id()));
    let store = RedbStore::open(&dir).unwrap();
    let h = conversation(&store).await;
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDBENCH", "secret", None, None, "bench"))
        .build();
    let objects: Arc<dyn ObjectStore> = Arc::new(S3Store::new(
        aws_sdk_s3::Client::from_conf(conf),
        "baton-media",
    ));
    let links = SessionLinks::new("https://x", "bench-key".to_owned().into(), 30);
    let pages = SessionPages::new(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        objects,
        links.clone(),
    );
    let token = links.token(&h.id, baton_shared::clock::now_ms() / 1000);
    let query = format!("t={token}");

    let mut page_times = Vec::new();
    let mut base_times = Vec::new();
    let mut bytes = 0;
    let mut text_bytes = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        match pages.answer(&h.id, &query).await {
            Answer::Page { html, .. } => bytes = html.len(),
            other => panic!("{other:?}"),
        }
        page_times.push(started.elapsed());
        let started = Instant::now();
        text_bytes = transcript(&store, &h).await;
        base_times.push(started.elapsed());
    }
    let (page, base) = (median(page_times), median(base_times));
    println!(
        "session page, {ENTRIES} entries ({} files presigned): {:.2} ms, {} KiB of HTML",
        h.media.len() + 1,
        page.as_secs_f64() * 1e3,
        bytes / 1024
    );
    println!(
        "baseline, the same timeline read and its transcript built: {:.2} ms ({} KiB) -> ratio {:.2}x",
        base.as_secs_f64() * 1e3,
        text_bytes / 1024,
        page.as_secs_f64() / base.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

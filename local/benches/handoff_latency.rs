//! Head-of-line blocking, measured: 200 conversations ask for a person at once in `baton-local`
//! (the embedded store, its lanes, media copies as tasks), 5 % of them with a photo; in one run a
//! single photo's download stalls 40 s. For each conversation: the time from the webhook accepting
//! the customer's request to HubSpot holding its ticket and handoff note. Printed: p50 and p99 of
//! the stalled conversation's neighbours in both runs, and their ratio (the target is ≤ 1.2).
//!
//! `cargo bench -p baton-local --bench handoff_latency`. The HubSpot and Graph test servers stand
//! in for the peers; HubSpot's rate limits are raised so that they do not hide the stages' own
//! behaviour (both runs alike).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;

use baton_local::{LocalConfig, Stage, run_stage};
use baton_shared::domain::{ConversationKey, HandoffRecord};
use baton_shared::whatsapp::sign;
use baton_testkit::graph::{self, Fault, GraphServer};
use baton_testkit::hubspot::{self, HubspotServer, Options};

const CONVERSATIONS: usize = 200;
/// One in twenty sends a photo.
const MEDIA_EVERY: usize = 20;
const STALL: Duration = Duration::from_secs(40);
const PNID: &str = "106540352242922";
const APP_SECRET: &str = "bench-app-secret";

fn customer(i: usize) -> String {
    format!("1650555{i:04}")
}

fn delivery(i: usize, t0: i64) -> Bytes {
    let who = customer(i);
    let mut messages = vec![
        json!({"from": who, "id": format!("wamid.b{i}-1"), "timestamp": t0.to_string(),
        "type": "text", "text": {"body": "My order arrived broken."}}),
    ];
    if i.is_multiple_of(MEDIA_EVERY) {
        messages.push(
            json!({"from": who, "id": format!("wamid.b{i}-2"), "timestamp": (t0 + 1).to_string(),
            "type": "image", "image": {"id": format!("media-{i}"), "mime_type": "image/jpeg"}}),
        );
    }
    messages.push(
        json!({"from": who, "id": format!("wamid.b{i}-3"), "timestamp": (t0 + 2).to_string(),
        "type": "text", "text": {"body": "I want to talk to a human, please."}}),
    );
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp",
                  "metadata": {"display_phone_number": "15550000000", "phone_number_id": PNID},
                  "contacts": [{"profile": {"name": format!("Customer {i}")}, "wa_id": who}],
                  "messages": messages}}]}]});
    Bytes::from(serde_json::to_vec(&body).unwrap())
}

/// One run: seconds from each conversation's request to its ticket and note.
async fn run(stalled: bool) -> Vec<(usize, f64)> {
    let dir = std::env::temp_dir().join(format!("baton-latency-{}-{stalled}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let hubspot = HubspotServer::start(Options {
        per_ten_seconds: 1_000_000,
        search_per_second: 100_000,
        ..Options::default()
    })
    .await;
    let graph = GraphServer::start(Duration::from_secs(300)).await;
    for i in (0..CONVERSATIONS).step_by(MEDIA_EVERY) {
        let fault = if stalled && i == 0 {
            Fault::StallDownload(STALL)
        } else {
            Fault::None
        };
        graph.add(
            &format!("media-{i}"),
            vec![7u8; 200_000],
            "image/jpeg",
            fault,
        );
    }
    let (hubspot_url, graph_url) = (hubspot.base_url(), graph.base_url.clone());
    let cfg = LocalConfig::from_source(&[
        ("BATON_DATA_DIR", dir.to_str().unwrap()),
        ("WHATSAPP_APP_SECRET", APP_SECRET),
        ("WHATSAPP_VERIFY_TOKEN", "bench-verify-token"),
        ("AGENT_EVENTS_SECRET", "bench-agent-secret"),
        ("WHATSAPP_ACCESS_TOKEN", graph::TOKEN),
        ("GRAPH_API_BASE_URL", graph_url.as_str()),
        ("GRAPH_API_VERSION", graph::VERSION),
        ("HUBSPOT_ACCESS_TOKEN", hubspot::TOKEN),
        ("HUBSPOT_BASE_URL", hubspot_url.as_str()),
        ("HUBSPOT_RATE_LIMIT_PER_10S", "1000000"),
        ("HUBSPOT_SEARCH_PER_SECOND", "100000"),
    ])
    .unwrap();
    let stores = cfg.open_store().await.unwrap();
    let processor = cfg.processor(stores.handoff.clone()).await.unwrap();
    let deliverer = Arc::new(cfg.deliverer(stores.trails.clone()).await.unwrap());
    let mut stages = Vec::new();
    for stage in [Stage::Handoff(processor), Stage::Hubspot(deliverer)] {
        stages.push(tokio::spawn(run_stage(
            stage,
            stores.feed.clone(),
            cfg.data_dir.clone(),
        )));
    }
    let app = cfg.webhook(&stores).await.unwrap();

    // Every conversation's request at once.
    let t0 = 1_767_225_600;
    let sent = futures_util::future::join_all((0..CONVERSATIONS).map(|i| {
        let app = app.clone();
        async move {
            let body = delivery(i, t0);
            let req = http::Request::post("/webhook")
                .header("content-type", "application/json")
                .header("x-hub-signature-256", sign(APP_SECRET, &body))
                .body(body)
                .unwrap();
            let status = app.handle(req).await.status();
            assert_eq!(status, 200);
            (i, Instant::now())
        }
    }))
    .await;

    // When each handoff's ticket and note are in HubSpot.
    let ids: HashMap<String, usize> = (0..CONVERSATIONS)
        .map(|i| {
            let key = ConversationKey::new(PNID, customer(i));
            (HandoffRecord::id_for(&key, 1), i)
        })
        .collect();
    let asked: HashMap<usize, Instant> = sent.into_iter().collect();
    let mut done: HashMap<usize, f64> = HashMap::new();
    let give_up = Instant::now() + Duration::from_secs(180);
    while done.len() < CONVERSATIONS && Instant::now() < give_up {
        for ticket in hubspot.tickets() {
            let Some(&i) = ticket
                .properties
                .get("baton_handoff_id")
                .and_then(|id| ids.get(id))
            else {
                continue;
            };
            if done.contains_key(&i)
                || hubspot
                    .associated("tickets", &ticket.id, "notes")
                    .is_empty()
            {
                continue;
            }
            done.insert(i, asked[&i].elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for stage in stages {
        stage.abort();
    }
    assert_eq!(done.len(), CONVERSATIONS, "every handoff reached HubSpot");
    let _ = std::fs::remove_dir_all(&dir);
    let mut out: Vec<(usize, f64)> = done.into_iter().collect();
    out.sort_by_key(|(i, _)| *i);
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// p50 and p99 of the neighbours (every conversation but the stalled one, number 0).
fn neighbours(times: &[(usize, f64)]) -> (f64, f64) {
    let mut t: Vec<f64> = times
        .iter()
        .filter(|(i, _)| *i != 0)
        .map(|(_, s)| *s)
        .collect();
    t.sort_by(f64::total_cmp);
    (percentile(&t, 50.0), percentile(&t, 99.0))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let calm = run(false).await;
    let stalled = run(true).await;
    let (calm50, calm99) = neighbours(&calm);
    let (stall50, stall99) = neighbours(&stalled);
    println!(
        "handoff latency, {CONVERSATIONS} conversations at once, one photo in {MEDIA_EVERY}; request → ticket + note in HubSpot"
    );
    println!("| run | neighbours p50 | neighbours p99 | the photo's own conversation |");
    println!("|---|---|---|---|");
    println!(
        "| no stall | {calm50:.2} s | {calm99:.2} s | {:.2} s |",
        calm[0].1
    );
    println!(
        "| one download stalled {} s | {stall50:.2} s ({:.2}×) | {stall99:.2} s ({:.2}×) | {:.2} s |",
        STALL.as_secs(),
        stall50 / calm50,
        stall99 / calm99,
        stalled[0].1
    );
}

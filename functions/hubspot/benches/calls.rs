//! HubSpot calls and wall time per handoff, against the test HubSpot server answering every call
//! after 100 ms. Prints the figures; targets: at most 4 calls for a known contact without media
//! (set-up cached per container), and wall time at most 1.1× the sum of the calls' time. After
//! the handoff: a text follow-up at most 2 calls (note, reply-window deadline), a rep's reply at
//! most 2 HubSpot calls (note, cleared field) and exactly one Graph send (a local stub with the
//! same latency). Then
//! the peak memory of streaming 10, 50 and 100 MB files to HubSpot Files, each in a child process.
//!
//! `cargo bench -p baton-hubspot --bench calls`

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_hubspot::{Deliverer, HubspotClient, HubspotConfig};
use baton_local::fs_objects::FsObjectStore;
use baton_local::redb_store::RedbStore;
use baton_shared::domain::*;
use baton_shared::objects::{ObjectMeta, ObjectStore};
use baton_shared::store::{
    ConversationReader, DeliveryStore, HandoffStore, TicketStore, TrailStore,
};
use baton_testkit::bodies;
use baton_testkit::fixtures::{child_figures, copied_file, handoff_record, print_child_figures};
use baton_testkit::hubspot::{HubspotServer, Options, TOKEN};
use bytes::Bytes;

const LATENCY: Duration = Duration::from_millis(100);
const HANDOFFS: usize = 20;

async fn record(
    store: &RedbStore,
    objects: &FsObjectStore,
    wa_id: &str,
    files: usize,
) -> HandoffRecord {
    let key = ConversationKey::new("100000000000000", wa_id);
    let id = HandoffRecord::id_for(&key, 1);
    let transcript = format!("transcripts/{id}.txt");
    let text = "[2026-11-24 10:00:00 UTC] Customer (Ana): my order arrived broken\n".repeat(40);
    objects
        .put(
            &transcript,
            Bytes::from(text.clone()),
            &ObjectMeta::default(),
        )
        .await
        .unwrap();
    let mut media = Vec::new();
    for i in 0..files {
        let k = format!("media/{id}/{i}.jpg");
        objects
            .put(
                &k,
                Bytes::from(vec![i as u8; 50_000 + i]),
                &ObjectMeta::default(),
            )
            .await
            .unwrap();
        media.push(copied_file(
            &key,
            &format!("wamid.{wa_id}.{i}"),
            &k,
            &format!("photo-{i}.jpg"),
            "image/jpeg",
            50_000,
        ));
    }
    let customer = Customer {
        wa_id: Some(wa_id.into()),
        profile_name: Some("Ana Ruiz".into()),
        ..Default::default()
    };
    let transcript = TranscriptRef {
        key: transcript,
        bytes: text.len() as u64,
        messages: 40,
        agent_events: 0,
        last_order_key: None,
    };
    let r = handoff_record(key, 1, customer, transcript, media, 1_763_990_000);
    assert!(store.save_handoff(&r).await.unwrap());
    r
}

struct Figures {
    calls: f64,
    wall: Duration,
    busy: Duration,
}

/// Delivers `HANDOFFS` handoffs one after another (as one shard's records are) and measures.
async fn measure(
    server: &HubspotServer,
    deliverer: &Deliverer,
    records: &[HandoffRecord],
) -> Figures {
    let before = server.requests().len();
    let busy_before = server.busy();
    let started = Instant::now();
    for r in records {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        match deliverer.deliver(r, deadline).await.unwrap() {
            baton_hubspot::Delivered::Done(_) => {}
            other => panic!("not delivered: {other:?}"),
        }
    }
    let n = records.len() as u32;
    Figures {
        calls: (server.requests().len() - before) as f64 / records.len() as f64,
        wall: started.elapsed() / n,
        busy: (server.busy() - busy_before) / n,
    }
}

/// Works through `events` one after another (as one handoff's events are) and measures.
async fn measure_events(
    server: &HubspotServer,
    sends: &std::sync::atomic::AtomicU32,
    deliverer: &Deliverer,
    events: &[TicketEvent],
) -> (Figures, f64) {
    let before = server.requests().len();
    let sends_before = sends.load(std::sync::atomic::Ordering::SeqCst);
    let busy_before = server.busy();
    let started = Instant::now();
    for e in events {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        match deliverer.ticket_event(e, deadline).await.unwrap() {
            baton_hubspot::EventDone::Done(_) => {}
            other => panic!("not done: {other:?}"),
        }
    }
    let n = events.len() as u32;
    let graph = (sends.load(std::sync::atomic::Ordering::SeqCst) - sends_before) as f64;
    (
        Figures {
            calls: (server.requests().len() - before) as f64 / events.len() as f64,
            wall: started.elapsed() / n,
            // Graph's sends take the same latency as HubSpot's calls here.
            busy: (server.busy() - busy_before + LATENCY * graph as u32) / n,
        },
        graph / events.len() as f64,
    )
}

/// A Graph API send endpoint answering after [`LATENCY`]; counts the sends.
async fn graph_stub(sends: Arc<std::sync::atomic::AtomicU32>) -> String {
    let app = axum::Router::new().route(
        "/v23.0/{phone_number_id}/messages",
        axum::routing::post(move || {
            let sends = sends.clone();
            async move {
                tokio::time::sleep(LATENCY).await;
                let n = sends.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                axum::Json(serde_json::json!({"messaging_product": "whatsapp",
                    "messages": [{"id": format!("wamid.bench{n}")}]}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// In a child process (so its peak memory is the upload's alone): uploads `key` from the
/// directory store at `dir` to the server at `base`; prints seconds and peak RSS (KiB).
fn upload_child(base: &str, dir: &str, key: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = HubspotClient::http(
            base,
            TOKEN.to_owned().into(),
            Default::default(),
            Duration::from_secs(60),
        )
        .unwrap();
        let call = baton_hubspot::api::upload_file(
            "files",
            baton_hubspot::api::NewFile {
                objects: Arc::new(FsObjectStore::new(dir)),
                key: key.to_owned(),
                file_name: "big.bin".into(),
                content_type: "application/octet-stream".into(),
                folder_path: "/baton/bench".into(),
            },
        );
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        let answer = client.call(&call, deadline).await.unwrap();
        assert!(answer.is_success(), "{:?}", answer.body);
        print_child_figures(started);
    });
}

/// Peak memory of streaming files from the media store to HubSpot Files.
async fn uploads() {
    let server = HubspotServer::start(Options::default()).await;
    let dir = std::env::temp_dir().join(format!("baton-bench-upload-{}", std::process::id()));
    let objects = FsObjectStore::new(&dir);
    println!("\nStreaming a file from the media store to HubSpot Files (child process, peak RSS):");
    println!("| file | peak RSS | upload |");
    println!("|---|---|---|");
    for mb in [10usize, 50, 100] {
        let key = format!("media/{mb}.bin");
        let bytes: Vec<u8> = (0..mb * 1_000_000).map(|i| (i % 251) as u8).collect();
        objects
            .put(&key, Bytes::from(bytes), &ObjectMeta::default())
            .await
            .unwrap();
        let base = server.base_url();
        let dir_text = dir.to_str().unwrap().to_owned();
        let (secs, rss) = tokio::task::spawn_blocking(move || {
            child_figures(
                std::process::Command::new(std::env::current_exe().unwrap()).args([
                    "--upload-child",
                    &base,
                    &dir_text,
                    &key,
                ]),
            )
        })
        .await
        .unwrap();
        let stored = server.files().last().map_or(0, |f| f.bytes.len());
        assert_eq!(stored, mb * 1_000_000, "the server got the whole file");
        println!("| {mb} MB | {:.1} MiB | {secs:.3} s |", rss as f64 / 1024.0);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--upload-child") {
        upload_child(&args[2], &args[3], &args[4]);
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let server = HubspotServer::start(Options {
            latency: LATENCY,
            search_lag: Duration::ZERO,
            ..Options::default()
        })
        .await;
        let dir = std::env::temp_dir().join(format!("baton-bench-calls-{}", std::process::id()));
        let store = RedbStore::open(&dir).unwrap();
        let objects = Arc::new(FsObjectStore::new(dir.join("objects")));
        let base = server.base_url();
        let sends = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let graph = graph_stub(sends.clone()).await;
        let cfg = HubspotConfig::from_source(&[
            ("GRAPH_API_BASE_URL", graph.as_str()),
            ("HUBSPOT_ACCESS_TOKEN", TOKEN),
            ("HUBSPOT_BASE_URL", base.as_str()),
            ("WHATSAPP_ACCESS_TOKEN", "bench-token"),
            ("PUBLIC_BASE_URL", "https://baton.example.com"),
            ("SESSION_LINK_SECRET", "bench"),
            // A Professional portal's limit, so that 20 handoffs in a row are not throttled.
            ("HUBSPOT_RATE_LIMIT_PER_10S", "190"),
        ])
        .unwrap();
        let client = HubspotClient::from_config(&cfg).unwrap();
        let deliverer = Deliverer::new(cfg, client, Arc::new(store.clone()), objects.clone());

        // The container's first handoff pays for the set-up (properties created, pipelines,
        // association labels).
        let first = record(&store, &objects, "34600000000", 0).await;
        let setup = measure(&server, &deliverer, &[first]).await;

        // Known contacts: created by people with the WhatsApp id, as after their first handoff.
        let mut known = Vec::new();
        for i in 0..HANDOFFS {
            let wa = format!("3461{i:07}");
            server.add_contact(&[("baton_whatsapp_id", &format!("+{wa}")), ("firstname", "Ana")]);
            known.push(record(&store, &objects, &wa, 0).await);
        }
        let k = measure(&server, &deliverer, &known).await;

        // After those handoffs: each customer writes again (a text follow-up), then a rep
        // replies inside the window.
        let now = baton_shared::clock::now_ms();
        let mut follow_ups = Vec::new();
        let mut replies = Vec::new();
        for (i, h) in known.iter().enumerate() {
            let wa = &h.conversation.customer;
            let body = bodies::texts(
                &h.conversation.phone_number_id,
                wa,
                &[(format!("wamid.fu{i}"), now / 1000 - 5)],
            );
            store
                .write_batch(&build_batch(body.into(), now, BatchOrigin::Webhook))
                .await
                .unwrap();
            let message = store
                .messages_page(&h.conversation, None, 100)
                .await
                .unwrap()
                .messages
                .pop()
                .unwrap();
            let follow_up = TicketEvent::follow_up(h, &message, None, Some(now / 1000 + 86_400), now);
            assert!(store.save_ticket_event(&follow_up).await.unwrap());
            follow_ups.push(follow_up);
            let ticket_id = store
                .trail(&h.id)
                .await
                .unwrap()
                .and_then(|t| t.ticket.id)
                .unwrap();
            let reply = TicketEvent {
                handoff_id: h.id.clone(),
                id: format!("rp#{i}"),
                conversation: h.conversation.clone(),
                received_at_ms: now,
                kind: TicketEventKind::Reply {
                    ticket_id,
                    text: "Hi Ana, a new one ships today.".into(),
                    occurred_at_ms: now,
                },
            };
            assert!(store.save_ticket_event(&reply).await.unwrap());
            replies.push(reply);
        }
        let (fu, _) = measure_events(&server, &sends, &deliverer, &follow_ups).await;
        let (rp, rp_graph) = measure_events(&server, &sends, &deliverer, &replies).await;

        let mut new = Vec::new();
        for i in 0..HANDOFFS {
            new.push(record(&store, &objects, &format!("3462{i:07}"), 0).await);
        }
        let n = measure(&server, &deliverer, &new).await;

        let mut media = Vec::new();
        for i in 0..HANDOFFS {
            let wa = format!("3463{i:07}");
            server.add_contact(&[("baton_whatsapp_id", &format!("+{wa}")), ("firstname", "Ana")]);
            media.push(record(&store, &objects, &wa, 2).await);
        }
        let m = measure(&server, &deliverer, &media).await;

        println!("HubSpot calls and wall time per handoff (server answers every call after {} ms; {HANDOFFS} handoffs each)", LATENCY.as_millis());
        println!("| case | calls | wall time | sum of calls | ratio |");
        println!("|---|---|---|---|---|");
        for (name, f) in [
            ("first handoff of a container (set-up)", &setup),
            ("known contact, no media", &k),
            ("new contact, no media", &n),
            ("known contact, 2 images", &m),
            ("follow-up (text) on the open ticket", &fu),
            ("rep's reply sent as text (+ Graph sends)", &rp),
        ] {
            println!(
                "| {name} | {:.1} | {:.1} ms | {:.1} ms | {:.3}× |",
                f.calls,
                f.wall.as_secs_f64() * 1000.0,
                f.busy.as_secs_f64() * 1000.0,
                f.wall.as_secs_f64() / f.busy.as_secs_f64()
            );
        }
        let ok_calls = k.calls <= 4.0;
        let ratio = k.wall.as_secs_f64() / k.busy.as_secs_f64();
        println!(
            "target: known contact without media ≤ 4 calls: {} ({:.1}); wall ≤ 1.1× the calls: {} ({ratio:.3}×)",
            if ok_calls { "met" } else { "NOT met" },
            k.calls,
            if ratio <= 1.1 { "met" } else { "NOT met" },
        );
        println!(
            "after the handoff: a follow-up costs {:.1} HubSpot calls (target ≤ 2: note and reply-window deadline), a reply {:.1} HubSpot calls + {rp_graph:.1} Graph send (target ≤ 2 + 1: note and cleared field); wall {:.3}× / {:.3}× the calls",
            fu.calls,
            rp.calls,
            fu.wall.as_secs_f64() / fu.busy.as_secs_f64(),
            rp.wall.as_secs_f64() / rp.busy.as_secs_f64(),
        );
        assert_eq!(sends.load(std::sync::atomic::Ordering::SeqCst) as usize, replies.len(), "one send per reply");
        let _ = std::fs::remove_dir_all(&dir);
        uploads().await;
    });
}

//! Transcript and detection cost, without I/O: building the transcript of a 5,000-message
//! conversation (mixed types, agent replies, media lines resolved) and running detection on a
//! message, median of repeated runs.

use std::collections::HashMap;
use std::time::Instant;

use baton_handoff::Detector;
use baton_shared::domain::*;
use baton_shared::transcript::Transcript;
use serde_json::json;

fn entries(n: usize) -> Vec<TimelineEntry> {
    let key = ConversationKey::new("106540352242922", "16505551234");
    (0..n)
        .map(|i| {
            let ts = 1_763_990_000 + i as i64;
            if i % 5 == 4 {
                let raw = json!({"id": format!("e{i}"), "type": "message", "phone_number_id": "106540352242922", "customer": "16505551234",
                    "wamid": format!("wamid.agent{i}"), "text": "Thanks! Let me check the status of your order, one moment please."})
                .to_string();
                return TimelineEntry::Agent(AgentEventRecord {
                    conversation: key.clone(),
                    event_id: format!("e{i}"),
                    kind: AgentEventKind::Message,
                    timestamp: ts,
                    received_at_ms: ts * 1000,
                    seq: 0,
                    failed: false,
                    raw,
                });
            }
            let wamid = format!("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAz{i:06}");
            let (kind, body) = match i % 10 {
                1 => ("image", json!({"image": {"id": format!("m{i}"), "mime_type": "image/jpeg", "sha256": "x", "caption": "the box"}})),
                3 => ("reaction", json!({"reaction": {"message_id": format!("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAz{:06}", i - 1), "emoji": "👍"}})),
                7 => ("location", json!({"location": {"latitude": 38.7, "longitude": -9.1, "name": "Shop"}})),
                _ => ("text", json!({"text": {"body": "Hi, my order 48213 still has not arrived and the tracking page shows nothing new since Monday."}})),
            };
            let mut m = json!({"from": "16505551234", "id": wamid, "timestamp": ts.to_string(), "type": kind});
            m.as_object_mut().unwrap().extend(body.as_object().unwrap().clone());
            TimelineEntry::Message(MessageRecord {
                conversation: key.clone(),
                wamid,
                timestamp: ts,
                kind: kind.into(),
                received_at_ms: ts * 1000,
                seq: 0,
                delivery_id: DeliveryId("d".into()),
                raw: m.to_string(),
            })
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let n = 5_000;
    let timeline = entries(n);
    let copies: HashMap<String, MediaRecord> = HashMap::new();
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..21 {
        let started = Instant::now();
        let mut t = Transcript::new("WhatsApp conversation with Maria (+16505551234)", "Maria");
        for page in timeline.chunks(500) {
            for e in page {
                t.push(e);
            }
        }
        let rendered = t.finish();
        let text = rendered.text(&copies, &|k| format!("s3://bucket/{k}"));
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        bytes = text.len();
    }
    println!(
        "transcript of {n} messages ({} KiB): median {:.1} ms over 21 runs (target < 50 ms)",
        bytes / 1024,
        median(times)
    );

    let d = Detector::default();
    let corpus = [
        "Hi, my order 48213 still has not arrived and the tracking page shows nothing new since Monday.",
        "I want to speak to a human",
        "quiero hablar con un asesor por favor",
        "Ich möchte mit einem Menschen sprechen",
        "My travel agent booked the wrong flight",
        "أريد التحدث مع موظف",
        "хочу поговорить с человеком",
        "ok thanks",
    ];
    let rounds = 2_000;
    let started = Instant::now();
    let mut hits = 0;
    for _ in 0..rounds {
        for m in corpus {
            hits += usize::from(d.detect(std::hint::black_box(m)).is_some());
        }
    }
    let per = started.elapsed().as_secs_f64() * 1e6 / (rounds * corpus.len()) as f64;
    println!(
        "detection: {per:.1} µs per message (12 languages, {} of {} sample messages are requests)",
        hits / rounds,
        corpus.len()
    );
}

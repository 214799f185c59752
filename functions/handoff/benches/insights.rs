//! What Bedrock insights add to a handoff: the request Baton builds (printed whole for the demo
//! conversation: system prompt, tool schema, the cut transcript), its estimated tokens, and the
//! time Baton itself spends around the call (cut, request, signing, validation) against a local
//! Converse server that answers at once, for the demo conversation and a 500-message one. A real
//! model adds its own inference time on top, which cannot be measured here (no network).
//!
//! `cargo bench -p baton-handoff --bench insights`

use std::time::Instant;

use baton_handoff::bedrock::{self, BedrockConfig, BedrockInsights};
use baton_shared::domain::*;
use baton_shared::transcript::Transcript;
use baton_testkit::bedrock::BedrockServer;
use serde_json::json;

const MODEL: &str = "us.amazon.nova-lite-v1:0";

fn message(i: usize, text: &str) -> TimelineEntry {
    let key = ConversationKey::new("106540352242922", "16505551234");
    let ts = 1_767_225_600 + i as i64 * 30;
    let wamid = format!("wamid.demo-{i}");
    TimelineEntry::Message(MessageRecord {
        conversation: key,
        wamid: wamid.clone(),
        timestamp: ts,
        kind: "text".into(),
        received_at_ms: ts * 1000,
        seq: 0,
        delivery_id: DeliveryId("d".into()),
        raw: json!({"from": "16505551234", "id": wamid, "timestamp": ts.to_string(), "type": "text", "text": {"body": text}}).to_string(),
    })
}

fn agent(i: usize, text: &str) -> TimelineEntry {
    let key = ConversationKey::new("106540352242922", "16505551234");
    let ts = 1_767_225_600 + i as i64 * 30;
    TimelineEntry::Agent(AgentEventRecord {
        conversation: key,
        event_id: format!("e{i}"),
        kind: AgentEventKind::Message,
        timestamp: ts,
        received_at_ms: ts * 1000,
        seq: 0,
        failed: false,
        raw: json!({"id": format!("e{i}"), "type": "message", "phone_number_id": "106540352242922",
            "customer": "16505551234", "timestamp": ts, "text": text})
        .to_string(),
    })
}

fn transcript(entries: &[TimelineEntry]) -> String {
    let mut t = Transcript::new(
        "WhatsApp conversation with Demo Customer (+16*******34)",
        "Demo Customer",
    );
    for e in entries {
        t.push(e);
    }
    t.finish().text(&Default::default(), &|k| k.to_owned())
}

fn demo() -> Vec<TimelineEntry> {
    vec![
        message(0, "My order 48213 arrived broken, the screen is cracked."),
        agent(
            1,
            "I'm sorry to hear that! Could you send me a photo of the screen?",
        ),
        message(
            2,
            "This is the second time this happens and I am really frustrated. I want to talk to a human, please.",
        ),
    ]
}

fn long() -> Vec<TimelineEntry> {
    (0..500)
        .map(|i| match i % 4 {
            3 => agent(i, "Thanks! Let me check the status of your order, one moment please."),
            _ if i == 499 => message(i, "I want to talk to a human, please."),
            _ => message(i, "Hi, my order 48213 still has not arrived and the tracking page shows nothing new since Monday."),
        })
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = BedrockServer::start(MODEL).await;
    let model = BedrockInsights::new(&server.sdk_config(), BedrockConfig::new(MODEL));
    println!(
        "| conversation | transcript tokens (est.) | transcript sent (est.) | request / answer tokens (the server's estimate, system prompt and schema included) | Baton's own time per call (median of 20) |"
    );
    println!("|---|---|---|---|---|");
    for (name, entries) in [("demo (3 lines)", demo()), ("500 messages", long())] {
        let text = transcript(&entries);
        let cut = bedrock::cut_transcript(&text, bedrock::TOKEN_BUDGET, Some("talk to a human"));
        let mut times = Vec::new();
        let mut tokens = (0, 0);
        for _ in 0..20 {
            let started = Instant::now();
            let answer = model
                .insights(&text, Some("talk to a human"))
                .await
                .unwrap();
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            tokens = (answer.input_tokens, answer.output_tokens);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "| {name} | {} | {} | {} / {} | {:.2} ms |",
            bedrock::estimated_tokens(&text),
            bedrock::estimated_tokens(&bedrock::user_text(&cut)),
            tokens.0,
            tokens.1,
            times[times.len() / 2]
        );
    }
    println!("\nThe Converse request for the demo conversation, as the server received it:\n");
    let first = &server.requests()[0];
    println!("{}", serde_json::to_string_pretty(first).unwrap());
}

//! The handoff stage end to end: signed webhooks and agent events into DynamoDB Local, its stream
//! read the way Lambda's event source mapping reads it and handed to the handoff function's batch
//! handler, media copied from the local Graph API into s3s-fs (which checks SigV4).

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use baton_local::stream::StreamReader;
use baton_shared::domain::*;
use baton_shared::handoff::llm::{LlmClient, LlmConfig};
use baton_shared::handoff::media::{GraphConfig, MediaCopier};
use baton_shared::handoff::{HandoffSettings, Processor};
use baton_shared::objects::{ObjectStore, S3Store};
use baton_shared::store::contract::bodies;
use baton_shared::store::{DynamoDbStore, HandoffStore, Store};
use http::StatusCode;
use serde_json::{Value, json};

use crate::graph::{self, Fault, GraphServer};
use crate::support::*;

const PNID: &str = "106540352242922";
const CUSTOMER: &str = "16505551234";
const T0: i64 = 1_763_990_000;

struct Rig {
    app: baton_webhook::Webhook,
    store: DynamoDbStore,
    objects: S3Store,
    graph: GraphServer,
    reader: StreamReader,
    processor: Processor,
}

fn aws(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "test",
            "test",
            None,
            None,
            "baton-tests",
        )))
        .build()
}

fn graph_config(graph: &GraphServer) -> GraphConfig {
    let mut g = GraphConfig::new(
        &graph.base_url,
        graph::VERSION,
        Some(graph::TOKEN.to_owned().into()),
    );
    g.attempts = 3;
    g.backoff = Duration::from_millis(20);
    g.read_timeout = Duration::from_millis(700);
    g
}

async fn rig(settings: HandoffSettings, llm: Option<LlmConfig>) -> Option<Rig> {
    let endpoint = dynamodb_endpoint()?;
    let objects = s3_store().await?;
    let sdk = aws(&endpoint);
    let store = DynamoDbStore::from_config(&sdk, unique("baton-handoff"));
    store.ensure_table().await.unwrap();
    let graph = GraphServer::start(Duration::from_secs(300)).await;
    let copier = MediaCopier::new(graph_config(&graph), Arc::new(objects.clone())).unwrap();
    let processor = Processor::new(
        Arc::new(store.clone()),
        copier,
        llm.map(|c| LlmClient::new(c).unwrap()),
        settings,
    );
    let reader = StreamReader::open(&sdk, store.table(), None).await.unwrap();
    Some(Rig {
        app: webhook(Arc::new(store.clone()) as Arc<dyn Store>),
        store,
        objects,
        graph,
        reader,
        processor,
    })
}

impl Rig {
    /// Delivers `body` signed, twice, as Meta does when an answer is slow.
    async fn deliver_twice(&self, body: Vec<u8>) {
        for _ in 0..2 {
            let (status, answer) = call(&self.app, signed(body.clone())).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
        }
    }

    async fn agent(&self, events: Value) -> Value {
        let (status, answer) = call(&self.app, agent_post(events.to_string())).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
    }

    /// Reads the stream and hands each batch to the Lambda handler; with `redeliver`, hands every
    /// batch over twice, as Lambda does after a timeout.
    async fn run_stream(&mut self, redeliver: bool) -> usize {
        let mut seen = 0;
        loop {
            let batches = self.reader.poll().await.unwrap();
            if batches.is_empty() {
                return seen;
            }
            for batch in batches {
                let times = if redeliver { 2 } else { 1 };
                for _ in 0..times {
                    let mut event = aws_lambda_events::event::dynamodb::Event::default();
                    event.records = batch.records.clone();
                    let response = baton_handoff::handle_batch(&self.processor, event).await;
                    assert!(
                        response.batch_item_failures.is_empty(),
                        "{:?}",
                        response.batch_item_failures
                    );
                }
                seen += batch.records.len();
                self.reader.settle(&batch, None);
            }
        }
    }

    /// Every handoff item in the table.
    async fn handoffs(&self) -> Vec<HandoffRecord> {
        let out = self
            .store
            .client()
            .scan()
            .table_name(self.store.table())
            .filter_expression("item_type = :h")
            .expression_attribute_values(
                ":h",
                aws_sdk_dynamodb::types::AttributeValue::S("handoff".into()),
            )
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        out.items()
            .iter()
            .map(|i| match i.get("record") {
                Some(aws_sdk_dynamodb::types::AttributeValue::S(j)) => {
                    serde_json::from_str(j).unwrap()
                }
                other => panic!("handoff without record: {other:?}"),
            })
            .collect()
    }
}

fn message(fixture_name: &str, wamid: &str, ts: i64) -> Value {
    let f: Value = serde_json::from_slice(&fixture(fixture_name)).unwrap();
    let mut m = f["entry"][0]["changes"][0]["value"]["messages"][0].clone();
    m["from"] = json!(CUSTOMER);
    m["id"] = json!(wamid);
    m["timestamp"] = json!(ts.to_string());
    m
}

fn deliver(messages: Vec<Value>) -> Vec<u8> {
    bodies::delivery(
        PNID,
        bodies::contact(CUSTOMER, "Maria Lopez"),
        Value::Array(messages),
        json!([]),
    )
}

fn media(m: &mut Value, kind: &str, id: &str, bytes: &[u8], url: Option<String>) {
    m[kind]["id"] = json!(id);
    m[kind]["sha256"] = json!(graph::sha256_b64(bytes));
    match url {
        Some(u) => m[kind]["url"] = json!(u),
        None => {
            if let Some(o) = m[kind].as_object_mut() {
                o.remove("url");
            }
        }
    }
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn key() -> ConversationKey {
    ConversationKey::new(PNID, CUSTOMER)
}

#[tokio::test]
async fn a_real_conversation_makes_exactly_one_handoff_with_transcript_insights_and_media() {
    let Some(mut rig) = rig(HandoffSettings::default(), None).await else {
        return;
    };
    let photo = pattern(150_000, 1);
    let voice = pattern(40_000, 2);
    let pdf = pattern(9 * 1024 * 1024 + 123, 3);
    rig.graph
        .add("media-photo", photo.clone(), "image/jpeg", Fault::None);
    rig.graph.add(
        "media-voice",
        voice.clone(),
        "audio/ogg; codecs=opus",
        Fault::FailLookups(1),
    );
    rig.graph
        .add("media-pdf", pdf.clone(), "application/pdf", Fault::None);

    rig.deliver_twice(deliver(vec![bodies::text(
        "wamid.m1",
        CUSTOMER,
        T0,
        "Hi, my order 48213 arrived with a broken screen.",
    )]))
    .await;
    rig.agent(json!({"events": [
        {"id": "evt-1", "type": "reasoning", "phone_number_id": PNID, "customer": CUSTOMER, "timestamp": T0 + 5, "text": "Order issue; ask for a photo."},
        {"id": "evt-2", "type": "tool_call", "phone_number_id": PNID, "customer": CUSTOMER, "timestamp": T0 + 6,
         "tool": {"name": "lookup_order", "input": {"order": "48213"}, "output": {"status": "delivered"}, "duration_ms": 85}},
        {"id": "evt-3", "type": "message", "phone_number_id": PNID, "customer": CUSTOMER, "timestamp": T0 + 7, "wamid": "wamid.agent-1",
         "text": "I'm sorry to hear that! Could you send a photo of the damage?"}
    ]}))
    .await;
    let mut image = message("image.json", "wamid.m2", T0 + 60);
    media(
        &mut image,
        "image",
        "media-photo",
        &photo,
        Some(rig.graph.fresh_url("media-photo")),
    );
    image["image"]["caption"] = json!("Here is the screen");
    image["context"] = json!({"from": PNID, "id": "wamid.agent-1"});
    let mut voice_msg = message("audio_voice.json", "wamid.m3", T0 + 70);
    media(&mut voice_msg, "audio", "media-voice", &voice, None);
    let mut doc = message("document.json", "wamid.m4", T0 + 80);
    media(&mut doc, "document", "media-pdf", &pdf, None);
    doc["document"]["filename"] = json!("Invoice 48213.pdf");
    rig.deliver_twice(deliver(vec![image, voice_msg, doc]))
        .await;
    let location = message("location.json", "wamid.m5", T0 + 90);
    let mut reaction = message("reaction.json", "wamid.m6", T0 + 95);
    reaction["reaction"] = json!({"message_id": "wamid.m1", "emoji": "😡"});
    rig.deliver_twice(deliver(vec![location, reaction])).await;
    rig.deliver_twice(deliver(vec![bodies::text(
        "wamid.m7",
        CUSTOMER,
        T0 + 120,
        "This is useless. I want to talk to a human!!",
    )]))
    .await;
    // The customer insists; the episode is open, so this makes no second handoff.
    rig.deliver_twice(deliver(vec![bodies::text(
        "wamid.m8",
        CUSTOMER,
        T0 + 130,
        "hello?? real person please",
    )]))
    .await;

    let records = rig.run_stream(true).await;
    assert!(
        records >= 11,
        "8 messages and 3 agent events on the stream, got {records}"
    );

    let handoffs = rig.handoffs().await;
    assert_eq!(handoffs.len(), 1, "exactly one handoff");
    let h = &handoffs[0];
    assert_eq!(h.id, HandoffRecord::id_for(&key(), 1));
    assert_eq!(h.trigger.kind, TriggerKind::CustomerAsked);
    assert_eq!(h.trigger.source_id, "wamid.m7");
    assert_eq!(h.trigger.language.as_deref(), Some("en"));
    assert_eq!(h.reason.category, "customer_request");
    assert!(
        h.reason.text.contains("I want to talk to a human"),
        "{}",
        h.reason.text
    );
    assert_eq!(h.customer.profile_name.as_deref(), Some("Maria Lopez"));
    assert_eq!(h.customer.wa_id.as_deref(), Some(CUSTOMER));
    assert_eq!(h.reply_window_closes_at, Some(T0 + 130 + 24 * 3600));
    assert_eq!(h.insights.language.as_deref(), Some("en"));
    assert_eq!(h.insights.sentiment.label, SentimentLabel::Negative);
    assert!(
        h.insights.summary.contains("48213"),
        "{}",
        h.insights.summary
    );
    assert_eq!(h.insights.summary_source, Source::Builtin);

    // Every file in S3, byte for byte, with Meta's checksum confirmed.
    assert_eq!(h.media.len(), 3);
    for (record, bytes) in h.media.iter().zip([&photo, &voice, &pdf]) {
        assert_eq!(record.state, MediaState::Copied, "{record:?}");
        assert_eq!(record.sha256_matches, Some(true));
        assert_eq!(record.bytes, Some(bytes.len() as u64));
        let stored = rig
            .objects
            .get(record.key.as_deref().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(
            stored.as_ref() == bytes.as_slice(),
            "{} differs",
            record.filename
        );
    }
    assert_eq!(h.media[1].filename, "voice-note.ogg");
    assert_eq!(h.media[2].filename, "Invoice 48213.pdf");
    assert!(
        h.media[2]
            .key
            .as_deref()
            .unwrap()
            .ends_with("/Invoice_48213.pdf")
    );
    // The photo's webhook carried its URL: no lookup for it. The voice note's first lookup
    // failed and was retried.
    assert_eq!(rig.graph.lookups(), 3, "pdf once, voice twice");
    assert_eq!(rig.graph.refused(), 0);

    let transcript = String::from_utf8(
        rig.objects
            .get(&h.transcript.key)
            .await
            .unwrap()
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert_eq!(h.transcript.messages, 8);
    assert_eq!(h.transcript.agent_events, 3);
    let lines: Vec<&str> = transcript.lines().collect();
    let expect_in_order = [
        "Customer (Maria Lopez): Hi, my order 48213 arrived with a broken screen.",
        "AI agent: I'm sorry to hear that! Could you send a photo of the damage?",
        "Customer (Maria Lopez): (replying to “I'm sorry to hear that! Could you send a photo of the damag…”) [image] Here is the screen — s3://",
        "Customer (Maria Lopez): [voice note] — s3://",
        "Customer (Maria Lopez): [document “Invoice 48213.pdf”] my receipt — s3://",
        "Customer (Maria Lopez): shared a location: ",
        "Customer (Maria Lopez): reacted 😡 to “Hi, my order 48213 arrived with a broken screen.”",
        "Customer (Maria Lopez): This is useless. I want to talk to a human!!",
        "Customer (Maria Lopez): hello?? real person please",
    ];
    let mut at = 0;
    for want in expect_in_order {
        let found = lines[at..].iter().position(|l| l.contains(want));
        assert!(
            found.is_some(),
            "{want:?} not found in order in:\n{transcript}"
        );
        at += found.unwrap() + 1;
    }
    assert!(
        transcript.contains("https://maps.google.com/?q="),
        "{transcript}"
    );
    assert!(
        !transcript.contains("lookup_order"),
        "tool calls stay off the rep's transcript"
    );
    assert!(
        lines
            .iter()
            .all(|l| l.is_empty() || l.starts_with('[') || l.starts_with("WhatsApp conversation")),
        "{transcript}"
    );

    // Handing the whole stream over again changes nothing.
    let mut reader =
        StreamReader::open(&aws(&dynamodb_endpoint().unwrap()), rig.store.table(), None)
            .await
            .unwrap();
    std::mem::swap(&mut rig.reader, &mut reader);
    rig.run_stream(false).await;
    assert_eq!(rig.handoffs().await.len(), 1);
    assert_eq!(rig.graph.lookups(), 3, "copied files are not fetched again");
}

//! The handoff stage end to end: signed webhooks and agent events into DynamoDB Local, its stream
//! read the way Lambda's event source mapping reads it and handed to the handoff function's batch
//! handler, media copied from the local Graph API into s3s-fs (which checks SigV4).

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use baton_handoff::bedrock::BedrockInsights;
use baton_handoff::copies::{TokioCopyQueue, run_local_copies};
use baton_handoff::llm::{LlmClient, LlmConfig};
use baton_handoff::media::MediaCopier;
use baton_handoff::{HandoffSettings, Processor};
use baton_local::stream::StreamReader;
use baton_shared::domain::*;
use baton_shared::objects::{ObjectStore, S3Store};
use baton_shared::store::{DynamoDbStore, HandoffStore, Store, TicketStore};
use baton_shared::whatsapp::graph::GraphConfig;
use baton_testkit::bodies;
use http::StatusCode;
use serde_json::{Value, json};

use crate::support::*;
use baton_testkit::graph::{self, Fault, GraphServer};

pub(crate) const PNID: &str = "106540352242922";
pub(crate) const CUSTOMER: &str = "16505551234";
pub(crate) const T0: i64 = 1_763_990_000;

pub(crate) struct Rig {
    pub(crate) app: baton_webhook::Webhook,
    pub(crate) store: DynamoDbStore,
    pub(crate) objects: S3Store,
    pub(crate) graph: GraphServer,
    pub(crate) reader: StreamReader,
    pub(crate) processor: Arc<Processor>,
}

pub(crate) fn aws(endpoint: &str) -> aws_config::SdkConfig {
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

pub(crate) fn graph_config(graph: &GraphServer) -> GraphConfig {
    let mut g = GraphConfig::new(
        &graph.base_url,
        graph::VERSION,
        Some(graph::TOKEN.to_owned().into()),
    );
    g.attempts = 3;
    g.backoff = Duration::from_millis(20);
    g.read_timeout = Duration::from_millis(700);
    g.attempt_timeout = Duration::from_secs(1);
    g
}

pub(crate) async fn rig(settings: HandoffSettings, llm: Option<LlmConfig>) -> Option<Rig> {
    rig_retaining(settings, llm, None).await
}

/// A rig whose store stamps items with a retention of `days`.
pub(crate) async fn rig_retaining(
    settings: HandoffSettings,
    llm: Option<LlmConfig>,
    days: Option<u32>,
) -> Option<Rig> {
    rig_built(settings, llm, days, None, None).await
}

/// A rig whose copies run from a queue, as in the Lambda and `baton-local`, with `graph`'s
/// timeouts.
pub(crate) async fn rig_queued(
    settings: HandoffSettings,
    graph: fn(&GraphServer) -> GraphConfig,
) -> Option<Rig> {
    rig_built(settings, None, None, Some(graph), None).await
}

/// A rig whose insights come from `model` on Amazon Bedrock.
pub(crate) async fn rig_with_bedrock(model: BedrockInsights) -> Option<Rig> {
    rig_built(HandoffSettings::default(), None, None, None, Some(model)).await
}

async fn rig_built(
    settings: HandoffSettings,
    llm: Option<LlmConfig>,
    days: Option<u32>,
    queued: Option<fn(&GraphServer) -> GraphConfig>,
    bedrock: Option<BedrockInsights>,
) -> Option<Rig> {
    let endpoint = dynamodb_endpoint()?;
    let objects = s3_store().await?;
    let sdk = aws(&endpoint);
    let store = DynamoDbStore::from_config(&sdk, unique("baton-handoff")).with_retention(days);
    store.ensure_table().await.unwrap();
    let graph = GraphServer::start(Duration::from_secs(300)).await;
    let graph_settings = queued.map_or_else(|| graph_config(&graph), |g| g(&graph));
    let copier = MediaCopier::new(graph_settings, Arc::new(objects.clone())).unwrap();
    let mut processor = Processor::new(
        Arc::new(store.clone()),
        copier,
        llm.map(|c| LlmClient::new(c).unwrap()),
        settings,
    );
    if let Some(model) = bedrock {
        processor = processor.with_bedrock(model);
    }
    let mut jobs = None;
    if queued.is_some() {
        let (queue, receiver) = TokioCopyQueue::new();
        processor = processor.with_copy_queue(Arc::new(queue));
        jobs = Some(receiver);
    }
    let processor = Arc::new(processor);
    if let Some(jobs) = jobs {
        tokio::spawn(run_local_copies(&processor, jobs));
    }
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
    /// The transcript the handoff function wrote for `h`.
    pub(crate) async fn transcript(&self, h: &HandoffRecord) -> String {
        let bytes = self
            .objects
            .get(&h.transcript.key)
            .await
            .unwrap()
            .expect("the transcript is stored");
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// Delivers `body` signed, twice, as Meta does when an answer is slow.
    pub(crate) async fn deliver_twice(&self, body: Vec<u8>) {
        for _ in 0..2 {
            let (status, answer) = call(&self.app, signed(body.clone())).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
        }
    }

    pub(crate) async fn agent(&self, events: Value) -> Value {
        let (status, answer) = call(&self.app, agent_post(events.to_string())).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer
    }

    /// Reads the stream and hands each batch to the Lambda's entry; with `redeliver`, hands every
    /// batch over twice, as Lambda does after a timeout.
    pub(crate) async fn run_stream(&mut self, redeliver: bool) -> usize {
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
                    // Through the function's own entry, as Lambda invokes it.
                    let payload = serde_json::to_value(&event).unwrap();
                    let response = baton_handoff::handle_invocation(&self.processor, payload)
                        .await
                        .unwrap();
                    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
                }
                seen += batch.records.len();
                self.reader.settle(&batch, None);
            }
        }
    }

    /// Every handoff item in the table.
    pub(crate) async fn handoffs(&self) -> Vec<HandoffRecord> {
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

pub(crate) fn message(fixture_name: &str, wamid: &str, ts: i64) -> Value {
    let f: Value = serde_json::from_slice(&fixture(fixture_name)).unwrap();
    let mut m = f["entry"][0]["changes"][0]["value"]["messages"][0].clone();
    m["from"] = json!(CUSTOMER);
    m["id"] = json!(wamid);
    m["timestamp"] = json!(ts.to_string());
    m
}

pub(crate) fn deliver(messages: Vec<Value>) -> Vec<u8> {
    bodies::delivery(
        PNID,
        bodies::contact(CUSTOMER, "Maria Lopez"),
        Value::Array(messages),
        json!([]),
    )
}

pub(crate) fn media(m: &mut Value, kind: &str, id: &str, bytes: &[u8], url: Option<String>) {
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

pub(crate) fn pattern(n: usize, seed: u8) -> Vec<u8> {
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
    // The content type and the original file name travel with the copy.
    let head = rig
        .objects
        .client()
        .head_object()
        .bucket(rig.objects.bucket())
        .key(h.media[2].key.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("application/pdf"));
    assert_eq!(
        head.content_disposition(),
        Some("attachment; filename*=UTF-8''Invoice%2048213.pdf")
    );
    assert_eq!(
        h.media[1].content_type.as_deref(),
        Some("audio/ogg; codecs=opus")
    );
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

    let transcript = rig.transcript(h).await;
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

#[tokio::test]
async fn files_that_cannot_be_fetched_do_not_block_the_handoff_and_the_transcript_says_why() {
    let Some(mut rig) = rig(HandoffSettings::default(), None).await else {
        return;
    };
    let ok = pattern(30_000, 7);
    rig.graph.add(
        "media-broken",
        pattern(1000, 1),
        "image/jpeg",
        Fault::FailDownloads,
    );
    rig.graph.add(
        "media-hang",
        pattern(1000, 2),
        "video/mp4",
        Fault::HangDownload,
    );
    rig.graph
        .add("media-expired", ok.clone(), "image/png", Fault::None);
    rig.graph.add(
        "media-badsha",
        pattern(5000, 3),
        "image/webp",
        Fault::WrongSha,
    );
    rig.graph.add(
        "media-slow",
        pattern(200_000, 4),
        "image/jpeg",
        Fault::SlowDownload(20),
    );
    // Never silent for long, but never done: 10 chunks, 250 ms apart, past the 1 s attempt limit.
    rig.graph.add(
        "media-crawl",
        pattern(640 * 1024, 5),
        "video/mp4",
        Fault::SlowDownload(250),
    );
    // Over WhatsApp's 100 MB inbound limit, by what the Graph API says.
    rig.graph.add(
        "media-huge",
        pattern(1000, 6),
        "application/zip",
        Fault::ClaimsSize(150 * 1024 * 1024),
    );

    let mut msgs = Vec::new();
    for (i, (fixture_name, kind, id)) in [
        ("image.json", "image", "media-gone"),
        ("image.json", "image", "media-broken"),
        ("video.json", "video", "media-hang"),
        ("image.json", "image", "media-expired"),
        ("sticker_static.json", "sticker", "media-badsha"),
        ("image.json", "image", "media-slow"),
        ("video.json", "video", "media-crawl"),
        ("document.json", "document", "media-huge"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut m = message(fixture_name, &format!("wamid.f{i}"), T0 + i as i64);
        let url = (id == "media-expired").then(|| rig.graph.expired_url(id));
        media(&mut m, kind, id, &pattern(10, 0), url);
        msgs.push(m);
    }
    rig.deliver_twice(deliver(msgs)).await;
    rig.run_stream(false).await;
    let after_arrival = rig.graph.downloads();
    // Each file was copied (or its failure recorded) when its message arrived, before any handoff.
    assert!(rig.handoffs().await.is_empty());
    let on_arrival = rig
        .store
        .media(&key(), "wamid.f3")
        .await
        .unwrap()
        .expect("recorded on arrival");
    assert_eq!(on_arrival.state, MediaState::Copied, "{on_arrival:?}");
    assert_eq!(
        rig.store
            .media(&key(), "wamid.f1")
            .await
            .unwrap()
            .map(|r| r.attempts),
        Some(3)
    );

    rig.deliver_twice(deliver(vec![bodies::text(
        "wamid.f9",
        CUSTOMER,
        T0 + 60,
        "quiero hablar con un asesor",
    )]))
    .await;
    rig.run_stream(false).await;
    let handoffs = rig.handoffs().await;
    assert_eq!(handoffs.len(), 1);
    let h = &handoffs[0];
    assert_eq!(h.trigger.language.as_deref(), Some("es"));
    let by_id = |id: &str| {
        h.media
            .iter()
            .find(|m| m.media_id == id)
            .unwrap_or_else(|| panic!("{id} missing"))
    };

    let gone = by_id("media-gone");
    assert_eq!((gone.state, gone.retryable), (MediaState::Failed, false));
    assert!(
        gone.error.as_deref().unwrap().contains("Graph error 100"),
        "{gone:?}"
    );
    assert_eq!(
        gone.attempts, 1,
        "a media id that does not exist is not asked for again"
    );

    let broken = by_id("media-broken");
    assert_eq!((broken.state, broken.retryable), (MediaState::Failed, true));
    assert!(
        broken.error.as_deref().unwrap().contains("500"),
        "{broken:?}"
    );
    assert_eq!(
        broken.attempts, 4,
        "three attempts on arrival, one more at handoff"
    );

    let hang = by_id("media-hang");
    assert_eq!(hang.state, MediaState::Failed);
    assert!(
        hang.error.as_deref().unwrap().contains("timed out")
            || hang.error.as_deref().unwrap().contains("broke off"),
        "{hang:?}"
    );

    let expired = by_id("media-expired");
    assert_eq!(
        expired.state,
        MediaState::Copied,
        "an expired URL is looked up again: {expired:?}"
    );
    assert_eq!(
        rig.objects
            .get(expired.key.as_deref().unwrap())
            .await
            .unwrap()
            .unwrap()
            .as_ref(),
        ok.as_slice()
    );

    let badsha = by_id("media-badsha");
    assert_eq!(
        (badsha.state, badsha.sha256_matches),
        (MediaState::Copied, Some(false)),
        "kept, mismatch recorded"
    );
    assert_eq!(
        by_id("media-slow").state,
        MediaState::Copied,
        "a slow but steady download completes"
    );
    let crawl = by_id("media-crawl");
    assert_eq!(
        (crawl.state, crawl.retryable),
        (MediaState::Failed, true),
        "{crawl:?}"
    );
    assert!(
        crawl
            .error
            .as_deref()
            .unwrap()
            .contains("took longer than 1 s"),
        "{crawl:?}"
    );
    let huge = by_id("media-huge");
    assert_eq!(
        (huge.state, huge.retryable, huge.attempts),
        (MediaState::Failed, false, 1),
        "{huge:?}"
    );
    assert!(
        huge.error
            .as_deref()
            .unwrap()
            .contains("over WhatsApp's 104857600-byte limit"),
        "{huge:?}"
    );
    assert!(
        rig.graph.downloads() > after_arrival,
        "failed files are tried again at handoff time"
    );
    assert_eq!(
        rig.graph.refused(),
        0,
        "every request carried the token and a User-Agent"
    );

    let transcript = rig.transcript(h).await;
    let missing: Vec<&str> = transcript
        .lines()
        .filter(|l| l.contains("FILE MISSING:"))
        .collect();
    assert_eq!(missing.len(), 5, "{transcript}");
    assert!(missing[0].contains("does not exist"), "{}", missing[0]);
    assert!(
        transcript.contains("(its checksum differs from WhatsApp's)"),
        "{transcript}"
    );
}

#[tokio::test]
async fn the_agents_request_and_values_win_and_a_second_request_makes_no_second_handoff() {
    let Some(mut rig) = rig(HandoffSettings::default(), None).await else {
        return;
    };
    rig.deliver_twice(deliver(vec![bodies::text(
        "wamid.a1",
        CUSTOMER,
        T0,
        "Olá, quero cancelar meu plano",
    )]))
    .await;
    let handoff = json!({"id": "evt-h1", "type": "handoff", "phone_number_id": PNID, "customer": CUSTOMER, "timestamp": T0 + 3,
        "handoff": {"category": "cancellation", "reason": "Cancellations need a person to approve.",
                    "summary": "Customer wants to cancel plan P-77.", "sentiment": "neutral", "language": "pt-BR"}});
    let first = rig.agent(handoff.clone()).await;
    assert_eq!(first["events_new"], 1);
    let again = rig.agent(handoff).await;
    assert_eq!(
        (
            again["events_new"].as_u64(),
            again["events_duplicate"].as_u64()
        ),
        (Some(0), Some(1))
    );
    rig.deliver_twice(deliver(vec![bodies::text(
        "wamid.a2",
        CUSTOMER,
        T0 + 10,
        "quero falar com um atendente",
    )]))
    .await;
    rig.run_stream(true).await;

    let handoffs = rig.handoffs().await;
    assert_eq!(handoffs.len(), 1);
    let h = &handoffs[0];
    assert_eq!(h.trigger.kind, TriggerKind::AgentRequest);
    assert_eq!(h.trigger.source_id, "evt-h1");
    assert_eq!(
        (h.reason.category.as_str(), h.reason.text.as_str()),
        ("cancellation", "Cancellations need a person to approve.")
    );
    assert_eq!(
        (h.insights.summary.as_str(), h.insights.summary_source),
        ("Customer wants to cancel plan P-77.", Source::Agent)
    );
    assert_eq!(
        (h.insights.language.as_deref(), h.insights.language_source),
        (Some("pt-BR"), Source::Agent)
    );
    assert_eq!(
        (h.insights.sentiment.label, h.insights.sentiment.source),
        (SentimentLabel::Neutral, Source::Agent)
    );
    let transcript = rig.transcript(h).await;
    assert!(
        transcript
            .contains("System: the AI agent handed the conversation to a person (cancellation)"),
        "{transcript}"
    );
}

#[tokio::test]
async fn consecutive_agent_failures_open_a_handoff_and_a_success_resets_the_count() {
    let settings = HandoffSettings {
        failure_threshold: 3,
        ..HandoffSettings::default()
    };
    let Some(mut rig) = rig(settings, None).await else {
        return;
    };
    let ev = |id: &str, kind: &str, ts: i64, failed: bool| {
        let mut e = json!({"id": id, "type": kind, "phone_number_id": PNID, "customer": CUSTOMER, "timestamp": ts, "failed": failed});
        match kind {
            "tool_call" => e["tool"] = json!({"name": "search_kb", "error": "no results"}),
            _ => e["text"] = json!("Sorry, I could not find that."),
        }
        e
    };
    rig.deliver_twice(deliver(vec![bodies::text(
        "wamid.c1",
        CUSTOMER,
        T0,
        "How do I reset the router?",
    )]))
    .await;
    rig.agent(json!({"events": [
        ev("f1", "tool_call", T0 + 1, true), ev("f2", "message", T0 + 2, true),
        ev("ok", "message", T0 + 3, false),
        ev("f3", "tool_call", T0 + 4, true), ev("f4", "reasoning", T0 + 5, true), ev("f5", "message", T0 + 6, true),
    ]}))
    .await;
    rig.run_stream(true).await;
    let early = rig.handoffs().await;
    assert!(
        early.is_empty(),
        "two failures, a success, two failures (reasoning doesn't count): no handoff, got {:?}",
        early.first().map(|h| &h.trigger)
    );
    rig.agent(json!(ev("f6", "tool_call", T0 + 7, true))).await;
    rig.run_stream(true).await;
    let handoffs = rig.handoffs().await;
    assert_eq!(handoffs.len(), 1);
    assert_eq!(
        (
            handoffs[0].trigger.kind,
            handoffs[0].trigger.source_id.as_str()
        ),
        (TriggerKind::AgentFailures, "f6")
    );
    assert_eq!(
        handoffs[0].reason.text,
        "The AI agent could not help 3 times in a row."
    );
}

/// A chat-completions endpoint that checks the key and model, and answers, fails or stalls.
async fn llm_server(behaviour: &'static str) -> String {
    use axum::http::HeaderMap;
    async fn complete(
        axum::extract::State(b): axum::extract::State<&'static str>,
        headers: HeaderMap,
        body: String,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer llm-key") {
            return (StatusCode::UNAUTHORIZED, "bad key").into_response();
        }
        let req: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(req["model"], "summary-model");
        assert!(
            req["messages"][1]["content"]
                .as_str()
                .unwrap()
                .contains("48213")
        );
        match b {
            "stall" => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                StatusCode::OK.into_response()
            }
            "fail" => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
            _ => axum::Json(json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": " Order 48213 arrived broken; customer wants a person. "}}]})).into_response(),
        }
    }
    let app = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(complete))
        .with_state(behaviour);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// baton-local's own path: the embedded store's change feed, files under a directory.
async fn embedded_handoff(llm: Option<LlmConfig>) -> (HandoffRecord, String, Duration) {
    use baton_local::fs_objects::FsObjectStore;
    let store = embedded_store();
    let dir = std::env::temp_dir().join(unique("baton-objects"));
    let objects = Arc::new(FsObjectStore::new(&dir));
    let graph = GraphServer::start(Duration::from_secs(300)).await;
    let copier = MediaCopier::new(graph_config(&graph), objects.clone()).unwrap();
    let processor = Arc::new(Processor::new(
        Arc::new(store.clone()),
        copier,
        llm.map(|c| LlmClient::new(c).unwrap()),
        HandoffSettings::default(),
    ));
    let app = webhook(Arc::new(store.clone()) as Arc<dyn Store>);
    let body = deliver(vec![
        bodies::text("wamid.e1", CUSTOMER, T0, "My order 48213 arrived broken."),
        bodies::text(
            "wamid.e2",
            CUSTOMER,
            T0 + 5,
            "Ich möchte mit einem Menschen sprechen",
        ),
    ]);
    for _ in 0..2 {
        assert_eq!(call(&app, signed(body.clone())).await.0, StatusCode::OK);
    }
    let started = std::time::Instant::now();
    let done = baton_local::Stage::Handoff(processor.clone())
        .drain_embedded(&store)
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(done, 3, "one change per new message, and the handoff");
    assert_eq!(
        baton_local::Stage::Handoff(processor.clone())
            .drain_embedded(&store)
            .await
            .unwrap(),
        0,
        "the cursor is kept"
    );
    let id = HandoffRecord::id_for(&key(), 1);
    let h = store.handoff(&id).await.unwrap().expect("handoff written");
    let transcript = String::from_utf8(
        objects
            .get(&h.transcript.key)
            .await
            .unwrap()
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    (h, transcript, took)
}

fn llm_config(url: String) -> LlmConfig {
    LlmConfig {
        base_url: url,
        model: "summary-model".into(),
        api_key: Some("llm-key".to_owned().into()),
        timeout: Duration::from_millis(400),
    }
}

#[tokio::test]
async fn baton_local_runs_the_handoff_on_the_embedded_feed_and_an_llm_may_write_the_summary() {
    let (h, transcript, _) = embedded_handoff(None).await;
    assert_eq!(h.trigger.language.as_deref(), Some("de"));
    assert_eq!(h.insights.summary_source, Source::Builtin);
    assert!(
        transcript.contains("Ich möchte mit einem Menschen sprechen"),
        "{transcript}"
    );

    let (h, _, _) = embedded_handoff(Some(llm_config(llm_server("answer").await))).await;
    assert_eq!(
        (h.insights.summary.as_str(), h.insights.summary_source),
        (
            "Order 48213 arrived broken; customer wants a person.",
            Source::Llm
        )
    );

    for behaviour in ["fail", "stall"] {
        let (h, _, took) = embedded_handoff(Some(llm_config(llm_server(behaviour).await))).await;
        assert_eq!(h.insights.summary_source, Source::Builtin, "{behaviour}");
        assert!(
            h.insights.summary.contains("48213"),
            "{behaviour}: {}",
            h.insights.summary
        );
        assert!(
            took < Duration::from_secs(5),
            "{behaviour}: a stalled LLM costs its timeout only ({took:?})"
        );
    }
}

fn stream_record(
    event_name: &str,
    seq: &str,
    image: Value,
) -> aws_lambda_events::event::dynamodb::EventRecord {
    serde_json::from_value(json!({
        "eventID": format!("id-{seq}"), "eventName": event_name, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {"ApproximateCreationDateTime": 1_763_990_000, "Keys": {}, "NewImage": image, "SequenceNumber": seq,
                     "SizeBytes": 100, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    }))
    .unwrap()
}

#[tokio::test]
async fn the_lambda_reports_the_first_retryable_failure_and_leaves_the_rest_for_the_retry() {
    // A store nobody listens on: every read fails as retryable.
    let sdk = aws("http://127.0.0.1:9");
    let store = DynamoDbStore::from_config(&sdk, "no-table");
    let objects = Arc::new(baton_local::fs_objects::FsObjectStore::new(
        std::env::temp_dir().join(unique("baton-objects")),
    ));
    let mut graph = GraphConfig::new("http://127.0.0.1:9", graph::VERSION, None);
    graph.attempts = 1;
    let processor = Processor::new(
        Arc::new(store),
        MediaCopier::new(graph, objects).unwrap(),
        None,
        HandoffSettings::default(),
    );
    let message = |wamid: &str, text: &str| {
        json!({
            "pk": {"S": format!("CONV#{PNID}#{CUSTOMER}")}, "sk": {"S": format!("MSG#{wamid}")},
            "lsi1sk": {"S": format!("T#00{T0}#0000000000000#000000#{wamid}")}, "item_type": {"S": "message"},
            "phone_number_id": {"S": PNID}, "customer": {"S": CUSTOMER}, "wamid": {"S": wamid}, "ts": {"N": T0.to_string()},
            "kind": {"S": "text"}, "received_at_ms": {"N": "0"}, "seq": {"N": "0"}, "delivery_id": {"S": "d"},
            "raw": {"S": bodies::text(wamid, CUSTOMER, T0, text).to_string()}
        })
    };
    let mut event = aws_lambda_events::event::dynamodb::Event::default();
    event.records = vec![
        stream_record("MODIFY", "100", json!({"item_type": {"S": "status"}})),
        stream_record(
            "INSERT",
            "101",
            json!({"item_type": {"S": "message"}, "pk": {"S": "broken"}}),
        ),
        stream_record("INSERT", "102", message("wamid.x1", "thanks, all good")),
        stream_record(
            "INSERT",
            "103",
            message("wamid.x2", "I want to speak to a human"),
        ),
        stream_record("INSERT", "104", message("wamid.x3", "hello?")),
    ];
    let response = baton_handoff::handle_batch(&processor, event).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(
        failed,
        [Some("102".to_owned())],
        "a MODIFY is skipped, an unreadable record dropped; a plain text asks the store whether a handoff is open (it would be a follow-up), so it fails retryably and the rest waits"
    );
}

#[tokio::test]
async fn baton_local_on_dynamodb_reads_the_stream_like_lambda_and_resumes_where_it_stopped() {
    let Some(rig) = rig(HandoffSettings::default(), None).await else {
        return;
    };
    let positions = std::env::temp_dir()
        .join(unique("stream-positions"))
        .with_extension("json");
    let sdk = aws(&dynamodb_endpoint().unwrap());
    let mut reader = StreamReader::open(&sdk, rig.store.table(), Some(positions.clone()))
        .await
        .unwrap();
    rig.deliver_twice(deliver(vec![bodies::text(
        "wamid.s1", CUSTOMER, T0, "Hallo",
    )]))
    .await;
    assert_eq!(
        baton_local::Stage::Handoff(rig.processor.clone())
            .drain_stream(&mut reader)
            .await
            .unwrap(),
        1
    );
    assert!(rig.handoffs().await.is_empty());
    drop(reader);

    // A new reader (a restart) starts after what was processed.
    rig.deliver_twice(deliver(vec![bodies::text(
        "wamid.s2",
        CUSTOMER,
        T0 + 5,
        "ik wil met een medewerker praten",
    )]))
    .await;
    let mut reader = StreamReader::open(&sdk, rig.store.table(), Some(positions))
        .await
        .unwrap();
    assert_eq!(
        baton_local::Stage::Handoff(rig.processor.clone())
            .drain_stream(&mut reader)
            .await
            .unwrap(),
        1,
        "only the new message"
    );
    let handoffs = rig.handoffs().await;
    assert_eq!(handoffs.len(), 1);
    assert_eq!(handoffs[0].trigger.language.as_deref(), Some("nl"));
}

#[test]
fn baton_local_filters_the_stream_as_template_yaml_does() {
    let template =
        std::fs::read_to_string(format!("{}/template.yaml", env!("CARGO_MANIFEST_DIR"))).unwrap();
    // The handoff function's pattern, then the HubSpot function's.
    let patterns: Vec<Value> = template
        .lines()
        .filter(|l| l.trim_start().starts_with("- Pattern:"))
        .map(|line| {
            let text = line.split_once("Pattern:").unwrap().1.trim();
            serde_json::from_str(text.trim_matches('\'')).unwrap()
        })
        .collect();
    assert_eq!(patterns.len(), 2);
    for pattern in &patterns {
        assert_eq!(pattern["eventName"], json!(["INSERT"]));
    }
    assert_eq!(
        patterns[0]["dynamodb"]["NewImage"]["item_type"]["S"],
        json!(baton_handoff::FILTERED_ITEM_TYPES)
    );
    assert_eq!(
        patterns[0]["dynamodb"]["NewImage"]["kind"]["S"],
        json!([{"anything-but": baton_handoff::FILTERED_OUT_KINDS}])
    );
    assert_eq!(
        patterns[1]["dynamodb"]["NewImage"]["item_type"]["S"],
        json!(baton_hubspot::FILTERED_ITEM_TYPES)
    );
    let record = |name: &str, item_type: &str| {
        stream_record(
            name,
            "1",
            json!({"item_type": {"S": item_type}, "kind": {"S": "text"}}),
        )
    };
    let reasoning = stream_record(
        "INSERT",
        "1",
        json!({"item_type": {"S": "agent_event"}, "kind": {"S": "reasoning"}}),
    );
    assert!(!baton_handoff::passes_filter(&reasoning));
    assert!(baton_handoff::passes_filter(&record("INSERT", "message")));
    assert!(baton_handoff::passes_filter(&record(
        "INSERT",
        "agent_event"
    )));
    assert!(!baton_handoff::passes_filter(&record("MODIFY", "message")));
    assert!(!baton_handoff::passes_filter(&record("INSERT", "delivery")));
    assert!(baton_hubspot::passes_filter(&record("INSERT", "handoff")));
    assert!(baton_hubspot::passes_filter(&record(
        "INSERT",
        "ticket_event"
    )));
    assert!(!baton_hubspot::passes_filter(&record(
        "INSERT",
        "ticket_link"
    )));
    assert!(
        !baton_hubspot::passes_filter(&record("MODIFY", "handoff")),
        "the trail's own updates"
    );
    assert!(!baton_hubspot::passes_filter(&record("INSERT", "message")));
}

/// Messages the webhook stores but the handoff stage cannot read as messages (a lone UTF-16
/// surrogate, a placeholder where Meta sends a number) still reach the transcript: repaired, or
/// shown as unreadable with the reason; the handoff is not held up by them.
#[tokio::test]
async fn every_stored_message_reaches_the_transcript_even_one_that_cannot_be_read() {
    let Some(mut rig) = rig(HandoffSettings::default(), None).await else {
        return;
    };
    let mut location = bodies::text("wamid.u2", CUSTOMER, T0 + 5, "");
    location["type"] = json!("location");
    location["location"] =
        json!({"latitude": "LATITUDE", "longitude": "LONGITUDE", "name": "Home"});
    location.as_object_mut().unwrap().remove("text");
    let body = deliver(vec![
        bodies::text("wamid.u1", CUSTOMER, T0, "My screen LONE is cracked"),
        location,
        bodies::text("wamid.u3", CUSTOMER, T0 + 10, "I want to talk to a human"),
    ]);
    // serde_json cannot write a lone surrogate; Meta's JSON can carry one.
    let body = String::from_utf8(body)
        .unwrap()
        .replace("LONE", "\\ud800")
        .into_bytes();
    rig.deliver_twice(body).await;
    rig.run_stream(true).await;
    let handoffs = rig.handoffs().await;
    assert_eq!(handoffs.len(), 1);
    let h = &handoffs[0];
    assert_eq!(h.transcript.messages, 3);
    let transcript = rig.transcript(h).await;
    for want in [
        "Customer (Maria Lopez): (some characters could not be read) My screen \u{fffd} is cracked",
        "Customer (Maria Lopez): [unreadable location message: ",
        "Customer (Maria Lopez): I want to talk to a human",
    ] {
        assert!(transcript.contains(want), "{want:?} not in\n{transcript}");
    }
}

/// Timeouts long enough for a stalled download to finish.
pub(crate) fn patient_graph(graph: &GraphServer) -> GraphConfig {
    let mut g = graph_config(graph);
    g.read_timeout = Duration::from_secs(10);
    g.attempt_timeout = Duration::from_secs(20);
    g
}

#[tokio::test]
async fn a_stalled_download_holds_up_no_other_conversation_and_its_own_handoff_only_up_to_the_bound()
 {
    let settings = HandoffSettings {
        media_wait: Duration::from_millis(800),
        ..HandoffSettings::default()
    };
    let Some(mut rig) = rig_queued(settings, patient_graph).await else {
        return;
    };
    let photo = pattern(200_000, 9);
    rig.graph.add(
        "media-stalled",
        photo.clone(),
        "image/jpeg",
        Fault::StallDownload(Duration::from_secs(4)),
    );
    // Customer A sends a photo whose download stalls, then asks for a person.
    let mut image = message("image.json", "wamid.s1", T0);
    media(&mut image, "image", "media-stalled", &photo, None);
    let ask = bodies::text("wamid.s2", CUSTOMER, T0 + 5, "I want to talk to a human");
    rig.deliver_twice(deliver(vec![image, ask])).await;
    // Customer B, a neighbour on the same stream, asks for a person too.
    let neighbour = "16505559876";
    rig.deliver_twice(bodies::delivery(
        PNID,
        bodies::contact(neighbour, "Ana Ruiz"),
        json!([bodies::text(
            "wamid.n1",
            neighbour,
            T0 + 6,
            "I want to talk to a human"
        )]),
        json!([]),
    ))
    .await;

    rig.run_stream(false).await;
    // Both handoffs are written while A's download is still stalled: B never waited for it, and
    // A's handoff went on without the file after its bound.
    let handoffs = rig.handoffs().await;
    assert_eq!(handoffs.len(), 2, "{handoffs:#?}");
    assert!(
        rig.store.media(&key(), "wamid.s1").await.unwrap().is_none(),
        "the stalled copy has not landed yet"
    );
    let a = handoffs
        .iter()
        .find(|h| h.conversation == key())
        .expect("A's handoff");
    assert_eq!(a.media.len(), 1);
    assert_eq!(a.media[0].state, MediaState::Pending, "{:?}", a.media[0]);
    assert!(
        rig.transcript(a)
            .await
            .contains("still being copied: the file follows on the ticket"),
        "{}",
        rig.transcript(a).await
    );

    // When the copy lands, the file follows on A's ticket, once.
    let mut landed = None;
    for _ in 0..100 {
        let events = rig.store.ticket_events(&a.id).await.unwrap();
        landed = events.into_iter().find(|(e, _)| e.id == "file#wamid.s1");
        if landed.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (event, _) = landed.expect("a file_landed event for A's ticket");
    let TicketEventKind::FileLanded { media } = &event.kind else {
        panic!("{event:?}");
    };
    assert_eq!(media.state, MediaState::Copied, "{media:?}");
    assert_eq!(media.bytes, Some(photo.len() as u64));
    assert_eq!(rig.store.ticket_events(&a.id).await.unwrap().len(), 1);
    let b = handoffs.iter().find(|h| h.conversation != key()).unwrap();
    assert!(rig.store.ticket_events(&b.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_copy_queued_on_sqs_runs_from_the_functions_queue_handler() {
    let Some(moto) = moto_endpoint() else {
        return;
    };
    let Some(rig) = rig(HandoffSettings::default(), None).await else {
        return;
    };
    let sqs = aws_sdk_sqs::Client::new(&aws(&moto));
    let url = sqs
        .create_queue()
        .queue_name(unique("baton-media-copies"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let photo = pattern(50_000, 3);
    rig.graph
        .add("media-q", photo.clone(), "image/jpeg", Fault::None);
    let job = baton_handoff::media::MediaJob {
        conversation: key(),
        wamid: "wamid.q1".into(),
        kind: "image".into(),
        media: baton_shared::whatsapp::Media {
            id: "media-q".into(),
            mime_type: Some("image/jpeg".into()),
            sha256: Some(graph::sha256_b64(&photo)),
            ..Default::default()
        },
        attempts_before: 0,
        attempts: None,
        order_key: Some("T#1".into()),
    };
    use baton_handoff::media::CopyQueue as _;
    baton_handoff::copies::SqsCopyQueue::new(sqs.clone(), url.clone())
        .enqueue(&job)
        .await
        .unwrap();

    // Handed over as Lambda's SQS event source hands it, with an unreadable job beside it.
    let received = sqs
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let mut records: Vec<Value> = received
        .messages()
        .iter()
        .map(|m| json!({"messageId": m.message_id(), "body": m.body(), "eventSource": "aws:sqs"}))
        .collect();
    assert_eq!(records.len(), 1);
    records.push(json!({"messageId": "garbage", "body": "{not a job", "eventSource": "aws:sqs"}));
    // Through the function's own entry, which tells the queue's batches from the stream's.
    let response = baton_handoff::handle_invocation(&rig.processor, json!({ "Records": records }))
        .await
        .unwrap();
    assert_eq!(
        response["batchItemFailures"],
        json!([]),
        "an unreadable job is dropped, not retried: {response}"
    );
    let record = rig.store.media(&key(), "wamid.q1").await.unwrap().unwrap();
    assert_eq!(record.state, MediaState::Copied, "{record:?}");
    assert_eq!(record.sha256_matches, Some(true));
    let copied = rig
        .objects
        .get(record.key.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(copied.as_deref(), Some(&photo[..]));
}

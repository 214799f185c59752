//! The `baton-hubspot` binary as Lambda runs it: its settings from the environment and the
//! stack's secret (moto's Secrets Manager), the table on DynamoDB Local, the media bucket on
//! s3s-fs, one stream event from a Lambda Runtime API served here, and HubSpot's test server.

use baton_shared::domain::{ConversationKey, Customer, HandoffRecord, TrailStatus, TranscriptRef};
use baton_shared::objects::{ObjectMeta, ObjectStore};
use baton_shared::store::{HandoffStore, TrailStore};
use baton_testkit::fixtures::handoff_record;
use baton_testkit::hubspot::{HubspotServer, Options, TOKEN};
use baton_testkit::lambda_runtime::{
    REQUEST_ID, Running, RuntimeApi, Stack, json_lines, stream_insert,
};
use bytes::Bytes;
use serde_json::json;

/// A handoff as the handoff function writes it: a customer with a phone number, a transcript.
fn handoff() -> HandoffRecord {
    let key = ConversationKey::new("106540352242922", "34612345678");
    let customer = Customer {
        wa_id: Some("34612345678".into()),
        profile_name: Some("Lucía".into()),
        display_phone_number: "15550000000".into(),
        ..Default::default()
    };
    let transcript = TranscriptRef {
        key: format!("transcripts/{}.txt", HandoffRecord::id_for(&key, 1)),
        bytes: 40,
        messages: 2,
        agent_events: 0,
        last_order_key: None,
    };
    // The session link is signed as of the handoff, so its 30 days run from now.
    let now = baton_shared::clock::now_ms() / 1000;
    handoff_record(key, 1, customer, transcript, Vec::new(), now)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_binary_turns_a_stream_record_into_a_ticket_with_its_deployed_settings() {
    // The table and bucket, as the stack creates them.
    let Some(stack) = Stack::start().await else {
        return;
    };
    let (store, objects) = (&stack.store, &stack.objects);

    // The handoff the handoff function wrote, and its stream record as Lambda delivers it.
    let record = handoff();
    objects
        .put(
            &record.transcript.key,
            Bytes::from_static(b"[10:00] Customer: quiero hablar con una persona\n"),
            &ObjectMeta::default(),
        )
        .await
        .unwrap();
    assert!(store.save_handoff(&record).await.unwrap());
    let event = stream_insert(store, &format!("HANDOFF#{}", record.id), "HANDOFF").await;

    // The stack's secret, with the private app's token and the session-link key.
    let link_secret = "a-session-link-secret-of-the-stack";
    let arn = stack
        .secret(&json!({"HUBSPOT_ACCESS_TOKEN": TOKEN, "SESSION_LINK_SECRET": link_secret}))
        .await;

    let hubspot = HubspotServer::start(Options::default()).await;
    let api = RuntimeApi::start("baton-hubspot", vec![event.to_string()]).await;
    let child = stack
        .command(&api, env!("CARGO_BIN_EXE_baton-hubspot"))
        .env("BATON_SECRET_ARN", &arn)
        .env("HUBSPOT_BASE_URL", hubspot.base_url())
        .env(
            "PUBLIC_BASE_URL",
            "https://abc123.execute-api.us-east-1.amazonaws.com",
        )
        .spawn()
        .expect("start baton-hubspot");
    // JSON logs at INFO, as template.yaml's LoggingConfig makes Lambda set them: debug may name
    // numbers, info must not.
    let mut child = Running(child);
    let answer = api.answer(0, &mut child).await;
    assert_eq!(
        answer,
        (
            format!("{REQUEST_ID}/response"),
            json!({"batchItemFailures": []})
        ),
        "delivered, nothing reported back to the stream"
    );

    // One ticket with Baton's properties, linked to the new contact, and the note.
    let tickets = hubspot.tickets();
    assert_eq!(tickets.len(), 1);
    let t = &tickets[0].properties;
    assert_eq!(t["baton_handoff_id"], record.id);
    assert!(t["content"].contains("quiero hablar con una persona"));
    let link = &t["baton_session_url"];
    assert!(
        link.starts_with(&format!(
            "https://abc123.execute-api.us-east-1.amazonaws.com/sessions/{}?t=",
            record.id
        )),
        "{link}"
    );
    let token = link.split("?t=").nth(1).unwrap();
    let links =
        baton_shared::session::SessionLinks::new("https://x", link_secret.to_owned().into(), 30);
    assert!(
        links.verify(&record.id, token, baton_shared::clock::now_ms() / 1000),
        "signed with the stack's SESSION_LINK_SECRET"
    );
    assert_eq!(hubspot.contacts().len(), 1);
    assert_eq!(hubspot.contacts()[0].properties["phone"], "+34612345678");
    assert_eq!(hubspot.notes().len(), 1);
    let trail = store.trail(&record.id).await.unwrap().unwrap();
    assert_eq!(trail.status, TrailStatus::Done);

    // The logs name neither the token nor the customer's number.
    let out = child.stop_and_read();
    assert!(!out.contains(TOKEN), "the token is in the logs");
    assert!(
        !out.contains("612345678"),
        "the customer's number is in the logs"
    );
    assert!(out.contains(&record.id), "the logs name the handoff: {out}");
    let (logs, metrics) = json_lines(&out);
    for entry in &logs {
        assert!(entry["level"].is_string(), "{entry}");
    }
    // The lines about the handoff carry its id as the correlation id (the span's field).
    assert!(
        out.lines()
            .filter(|l| l.contains("HubSpot") && l.contains("\"level\""))
            .any(|l| l.contains(&format!("\"handoff_id\":\"{}\"", record.id))),
        "{out}"
    );
    // One EMF document for the invocation: CloudWatch reads the metrics from it.
    assert_eq!(metrics.len(), 1, "{out}");
    let m = &metrics[0];
    let declared = &m["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(declared["Namespace"], "Baton/test-stack");
    assert_eq!(declared["Dimensions"], json!([["Function"]]));
    assert_eq!(m["Function"], "hubspot");
    assert_eq!(m["HandoffsDelivered"], 1);
    let calls = m["HubspotCalls"].as_u64().unwrap();
    assert_eq!(
        calls as usize,
        hubspot.requests().len(),
        "every HubSpot call counted"
    );
    for d in declared["Metrics"].as_array().unwrap() {
        assert!(m[d["Name"].as_str().unwrap()].is_u64(), "{m}");
    }
}

//! The `baton-handoff` binary as Lambda runs it: settings from the environment template.yaml
//! sets and the stack's secret (moto), the table on DynamoDB Local, the bucket on s3s-fs, and the
//! stream record of a customer's "I want to talk to a person" from a Lambda Runtime API served
//! here. It opens the handoff, logs the record under the message's correlation id (never the
//! number or the wamid), and counts the handoff in its EMF metrics.

use baton_shared::domain::{BatchOrigin, ConversationKey, HandoffRecord, build_batch};
use baton_shared::store::{DeliveryStore, HandoffStore};
use baton_testkit::bodies;
use baton_testkit::lambda_runtime::{
    REQUEST_ID, Running, RuntimeApi, Stack, json_lines, stream_insert,
};
use serde_json::json;

const PNID: &str = "106540352242922";
const CUSTOMER: &str = "34612345678";
/// Base64 with the customer's number inside, as WhatsApp's ids are.
const WAMID: &str = "wamid.HBgLMzQ2MTIzNDU2NzgVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0MAA=";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_binary_opens_a_handoff_from_a_stream_record_and_counts_it() {
    let Some(stack) = Stack::start().await else {
        return;
    };
    let store = &stack.store;
    let now = baton_shared::clock::now_ms() / 1000;
    let body = bodies::delivery(
        PNID,
        bodies::contact(CUSTOMER, "Lucía"),
        json!([bodies::text(
            WAMID,
            CUSTOMER,
            now - 5,
            "I want to talk to a person, please"
        )]),
        json!([]),
    );
    store
        .write_batch(&build_batch(body.into(), now * 1000, BatchOrigin::Webhook))
        .await
        .unwrap();
    let key = ConversationKey::new(PNID, CUSTOMER);
    let event = stream_insert(store, &key.partition(), &format!("MSG#{WAMID}")).await;
    let arn = stack
        .secret(&json!({"WHATSAPP_ACCESS_TOKEN": "graph-token"}))
        .await;

    let api = RuntimeApi::start("baton-handoff", vec![event.to_string()]).await;
    let child = stack
        .command(&api, env!("CARGO_BIN_EXE_baton-handoff"))
        .env("BATON_SECRET_ARN", &arn)
        .spawn()
        .expect("start baton-handoff");
    let mut child = Running(child);
    let answer = api.answer(0, &mut child).await;
    assert_eq!(
        answer,
        (
            format!("{REQUEST_ID}/response"),
            json!({"batchItemFailures": []})
        )
    );
    let id = HandoffRecord::id_for(&key, 1);
    let handoff = store.handoff(&id).await.unwrap().expect("the handoff");
    assert_eq!(handoff.trigger.source_id, WAMID);

    let out = child.stop_and_read();
    assert!(
        !out.contains(CUSTOMER),
        "the customer's number is in the logs: {out}"
    );
    assert!(!out.contains(WAMID), "the wamid is in the logs: {out}");
    let (logs, metrics) = json_lines(&out);
    let written = logs
        .iter()
        .find(|l| l["fields"]["message"] == "handoff written")
        .unwrap_or_else(|| panic!("no log of the handoff: {out}"));
    assert_eq!(written["fields"]["handoff_id"], id);
    assert_eq!(
        written["span"]["message_ref"],
        baton_shared::observe::message_ref(WAMID),
        "the record's correlation id: {written}"
    );
    assert_eq!(metrics.len(), 1, "{out}");
    assert_eq!(metrics[0]["Function"], "handoff");
    assert_eq!(metrics[0]["Handoffs"], 1);
}

//! What each kind of delivery costs in DynamoDB write units, as DynamoDB Local reports them
//! (`ReturnConsumedCapacity`): a customer message, each status of the AI agent's messages, a
//! status of a rep's reply sent by Baton, a failure, and an agent event. The README's cost table
//! is computed from these figures; `cargo test write_units -- --nocapture` prints them.

use bytes::Bytes;
use serde_json::{Value, json};

use baton_shared::domain::{
    AgentEventKind, AgentEventRecord, BatchOrigin, ConversationKey, build_batch,
};
use baton_shared::store::{AgentEventStore, DeliveryStore};

use crate::support::*;

/// The sender of text.json.
const CUSTOMER_IN_TEXT_FIXTURE: &str = "16505551234";

/// A fixture delivery with its ids made unique to this run.
fn delivery(fixture_name: &str, tag: &str, edit: impl Fn(&mut Value)) -> Bytes {
    let mut v: Value = serde_json::from_slice(&fixture(fixture_name)).unwrap();
    let value = &mut v["entry"][0]["changes"][0]["value"];
    value["metadata"]["phone_number_id"] = json!(format!("pn-{tag}"));
    for list in ["messages", "statuses"] {
        if let Some(items) = value.get_mut(list).and_then(Value::as_array_mut) {
            for item in items {
                item["id"] = json!(format!("wamid.{tag}"));
            }
        }
    }
    edit(&mut v);
    Bytes::from(serde_json::to_vec(&v).unwrap())
}

#[tokio::test]
async fn write_units_per_message_status_and_agent_event() {
    let Some((store, _)) = dynamodb_store().await else {
        return;
    };
    let ns = unique("wu");
    let units = |body: Bytes| {
        let store = store.clone();
        async move {
            let batch = build_batch(body, 1_000, BatchOrigin::Webhook);
            store.write_batch(&batch).await.unwrap().write_units
        }
    };
    let message = units(delivery("text.json", &format!("{ns}-m"), |_| {})).await;
    let mut agent_statuses = Vec::new();
    for (i, name) in [
        "statuses_sent.json",
        "statuses_delivered.json",
        "statuses_read.json",
    ]
    .into_iter()
    .enumerate()
    {
        agent_statuses.push(units(delivery(name, &format!("{ns}-s{i}"), |_| {})).await);
    }
    let reply_status = units(delivery("statuses_sent.json", &format!("{ns}-r"), |v| {
        v["entry"][0]["changes"][0]["value"]["statuses"][0]["biz_opaque_callback_data"] =
            json!("baton|ho_0123456789abcdef|reply#1");
    }))
    .await;
    let failure = units(delivery("statuses_failed.json", &format!("{ns}-f"), |_| {})).await;
    let unreadable = units(Bytes::from(format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{ns}","changes":[{{"field":"messages","value":{{"messages":[{{"id":"x","type":"text","text":{{"body":"\ud800 a lone surrogate"}}}}]}}}}]}}]}}"#
    )))
    .await;
    // The agent answers in the conversation the customer's message opened.
    let event = AgentEventRecord {
        conversation: ConversationKey::new(format!("pn-{ns}-m"), CUSTOMER_IN_TEXT_FIXTURE),
        event_id: "evt-1".into(),
        kind: AgentEventKind::Message,
        timestamp: 1_767_225_600,
        received_at_ms: 1_000,
        seq: 0,
        failed: false,
        raw: json!({"id": "evt-1", "type": "message", "text": "Could you send me a photo of the screen?"}).to_string(),
    };
    let agent_event = store
        .write_agent_events(&[event])
        .await
        .unwrap()
        .write_units;

    println!(
        "write units: customer message {message}; agent message statuses {agent_statuses:?}; \
         a reply's status {reply_status}; a failed status {failure}; an unreadable delivery \
         {unreadable}; agent event {agent_event}"
    );
    // Before the cut (transactions, every body and status kept), DynamoDB billed 8 units a
    // message, 4 to 6 a status and 3 an agent event (README, "What a million messages costs").
    assert!(
        (1..=3).contains(&message),
        "the conversation, the message and its index entry"
    );
    assert_eq!(agent_statuses, [0, 0, 0], "nobody reads them");
    assert!((1..=1).contains(&reply_status), "one conditional update");
    assert!((1..=2).contains(&failure), "one conditional update");
    assert!(unreadable > 0, "an unreadable body is kept");
    assert!(
        (1..=2).contains(&agent_event),
        "the event and its index entry"
    );
}

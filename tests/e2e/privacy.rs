//! Forgetting a customer: after `forget_customer` (what `baton-local forget-customer` runs),
//! nothing in DynamoDB Local or on the S3 server names them, and another customer's data is
//! untouched. Retention's TTL stamp is checked on the items written.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use baton_handoff::HandoffSettings;
use baton_local::forget::forget_customer;
use baton_shared::domain::*;
use baton_shared::objects::ObjectStore;
use baton_shared::store::{TicketStore, TrailStore};
use baton_testkit::bodies;
use serde_json::json;

use crate::handoff::{self, CUSTOMER, PNID, T0};
use baton_testkit::graph::Fault;

const OTHER: &str = "447700900123";

/// Every item in the table.
async fn all_items(
    store: &baton_shared::store::DynamoDbStore,
) -> Vec<HashMap<String, AttributeValue>> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = store
            .client()
            .scan()
            .table_name(store.table())
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        out.extend(page.items().iter().cloned());
        match page.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => return out,
        }
    }
}

/// The item's strings and binary values, as text.
fn text_of(item: &HashMap<String, AttributeValue>) -> String {
    let mut out = String::new();
    for v in item.values() {
        match v {
            AttributeValue::S(s) => out.push_str(s),
            AttributeValue::B(b) => out.push_str(&String::from_utf8_lossy(b.as_ref())),
            _ => {}
        }
        out.push('\n');
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgetting_a_customer_leaves_nothing_of_them_and_everything_of_others() {
    // Items written with a retention carry DynamoDB's TTL attribute.
    let days = 30;
    let Some(mut rig) = handoff::rig_retaining(HandoffSettings::default(), None, Some(days)).await
    else {
        return;
    };

    let photo = handoff::pattern(30_000, 7);
    rig.graph
        .add("m-photo", photo.clone(), "image/jpeg", Fault::None);
    let mut image = handoff::message("image.json", "wamid.p2", T0 + 10);
    handoff::media(&mut image, "image", "m-photo", &photo, None);
    rig.deliver_twice(bodies::delivery(
        PNID,
        bodies::contact(CUSTOMER, "Maria Lopez"),
        // A message without an id beside them: the body is kept for replay.
        json!([bodies::text("wamid.p1", CUSTOMER, T0, "my parcel"), image,
            {"from": CUSTOMER, "type": "text", "timestamp": T0.to_string()}]),
        json!([bodies::reply_status(
            "wamid.out1",
            CUSTOMER,
            "delivered",
            T0 + 3
        )]),
    ))
    .await;
    rig.agent(
        json!({"id": "ev-p", "type": "message", "phone_number_id": PNID, "customer": CUSTOMER,
        "timestamp": T0 + 20, "text": "Let me check."}),
    )
    .await;
    rig.deliver_twice(handoff::deliver(vec![bodies::text(
        "wamid.p3",
        CUSTOMER,
        T0 + 60,
        "I want to talk to a human",
    )]))
    .await;
    rig.deliver_twice(bodies::delivery(
        PNID,
        bodies::contact(OTHER, "Sam Other"),
        json!([bodies::text(
            "wamid.q1",
            OTHER,
            T0 + 5,
            "I want to talk to a human"
        )]),
        json!([]),
    ))
    .await;
    rig.run_stream(false).await;
    let handoffs = rig.handoffs().await;
    assert_eq!(handoffs.len(), 2);
    let maria = handoffs
        .iter()
        .find(|h| h.conversation.customer == CUSTOMER)
        .unwrap()
        .clone();
    let sam = handoffs
        .iter()
        .find(|h| h.conversation.customer == OTHER)
        .unwrap()
        .clone();
    rig.store
        .save_trail(&maria.id, &HubspotTrail::default())
        .await
        .unwrap();
    // After the handoff: their ticket's link and an event on it (a reply), and the other's.
    for (h, ticket) in [(&maria, "9001"), (&sam, "9002")] {
        rig.store
            .link_ticket(&TicketLink {
                ticket_id: ticket.into(),
                handoff_id: h.id.clone(),
                conversation: h.conversation.clone(),
                episode: h.episode,
            })
            .await
            .unwrap();
        rig.store
            .save_ticket_event(&TicketEvent {
                handoff_id: h.id.clone(),
                id: format!("rp#{ticket}"),
                conversation: h.conversation.clone(),
                received_at_ms: 1,
                kind: TicketEventKind::Reply {
                    ticket_id: ticket.into(),
                    text: "We are on it".into(),
                    occurred_at_ms: 1,
                },
            })
            .await
            .unwrap();
    }
    let before = all_items(&rig.store).await;
    let now = baton_shared::clock::now_ms() / 1000;
    for item in &before {
        let Some(AttributeValue::N(at)) = item.get("expires_at") else {
            panic!("an item without expires_at: {item:?}");
        };
        let at: i64 = at.parse().unwrap();
        assert!(
            (at - (now + i64::from(days) * 86_400)).abs() < 600,
            "expires in {days} days: {at}"
        );
    }
    assert!(
        before.iter().any(|i| text_of(i).contains(CUSTOMER)),
        "the customer is stored before"
    );
    let maria_objects = rig
        .objects
        .list(&baton_shared::media_keys::conversation_prefix(
            &maria.conversation,
        ))
        .await
        .unwrap();
    assert_eq!(maria_objects.len(), 1, "the photo's copy");

    let report = forget_customer(&rig.store, &rig.objects, "+1 (650) 555-1234")
        .await
        .unwrap();
    assert_eq!(report.customer, "+16*******34", "masked in the report");
    assert_eq!(report.conversations, 1);
    assert_eq!(report.handoffs, std::slice::from_ref(&maria.id));
    assert_eq!(
        report.deliveries, 1,
        "the kept delivery that carried them (the others' items stood for them)"
    );
    for (kind, n) in [
        ("conversation", 1),
        ("message", 3),
        ("status", 1),
        ("agent_event", 1),
        ("media", 1),
        ("handoff", 1),
        ("ticket_event", 1),
        ("ticket_link", 1),
        ("delivery", 1),
    ] {
        assert_eq!(
            report.items.get(kind),
            Some(&n),
            "{kind}: {:?}",
            report.items
        );
    }
    let mut expected_objects = vec![maria_objects[0].clone(), maria.transcript.key.clone()];
    expected_objects.sort();
    let mut deleted = report.objects.clone();
    deleted.sort();
    assert_eq!(deleted, expected_objects);

    // Nothing left names the customer or their handoff; the other customer is untouched.
    let after = all_items(&rig.store).await;
    for item in &after {
        let text = text_of(item);
        assert!(!text.contains(CUSTOMER), "left behind: {item:?}");
        assert!(!text.contains(&maria.id), "left behind: {item:?}");
    }
    assert_eq!(
        after.len(),
        before.len() - report.items_total() as usize,
        "only their items went"
    );
    assert!(after.iter().any(|i| text_of(i).contains(OTHER)));
    assert!(
        baton_shared::store::HandoffStore::handoff(&rig.store, &sam.id)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(rig.store.ticket_events(&sam.id).await.unwrap().len(), 1);
    assert!(rig.store.ticket_link("9002").await.unwrap().is_some());
    assert!(rig.store.ticket_link("9001").await.unwrap().is_none());
    let left = rig.objects.list("").await.unwrap();
    assert!(
        !left.iter().any(|k| expected_objects.contains(k)),
        "{left:?}"
    );
    assert!(left.contains(&sam.transcript.key), "{left:?}");

    // A second run finds nothing more.
    let again = forget_customer(&rig.store, &rig.objects, "16505551234")
        .await
        .unwrap();
    assert_eq!(again.conversations, 0);
    assert_eq!(again.items_total(), 0);
    assert!(again.objects.is_empty());
}

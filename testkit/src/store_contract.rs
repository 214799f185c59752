//! The contract every store adapter must meet, as test functions that take the store under test.
//! The embedded adapter runs them in its unit tests, the DynamoDB adapter against DynamoDB Local.
//!
//! Each function takes a namespace that it puts into the business phone number id, so suites can
//! share one table without seeing each other's items.

use bytes::Bytes;
use serde_json::json;

use baton_shared::domain::*;
use baton_shared::store::{Store, StoreError};

use crate::bodies;

fn batch(body: Vec<u8>, received_at_ms: i64) -> DeliveryBatch {
    build_batch(Bytes::from(body), received_at_ms, BatchOrigin::Webhook)
}

fn pnid(ns: &str, case: &str) -> String {
    format!("{ns}-{case}")
}

async fn all_messages(
    store: &dyn Store,
    key: &ConversationKey,
    page_size: usize,
) -> Vec<MessageRecord> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .messages_page(key, after.as_deref(), page_size)
            .await
            .expect("messages page");
        assert!(
            page.messages.len() <= page_size,
            "a page holds at most its limit"
        );
        out.extend(page.messages);
        match page.next {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
}

/// Writes a delivery of text messages from `wa_id`, arrived at `received_at_ms`.
async fn write_texts(
    store: &dyn Store,
    p: &str,
    wa_id: &str,
    msgs: &[(&str, i64)],
    received_at_ms: i64,
) -> WriteReport {
    store
        .write_batch(&batch(bodies::texts(p, wa_id, msgs), received_at_ms))
        .await
        .expect("write")
}

async fn last_inbound(store: &dyn Store, key: &ConversationKey) -> Option<i64> {
    let conv = store
        .conversation(key)
        .await
        .expect("read")
        .expect("conversation stored");
    conv.last_inbound_at
}

async fn listed(store: &dyn Store, id: &DeliveryId) -> bool {
    store
        .replayable_deliveries(usize::MAX)
        .await
        .expect("replayable list")
        .contains(id)
}

/// Runs every contract test.
pub async fn run_all(store: &dyn Store, ns: &str) {
    stores_a_delivery_and_reads_it_back(store, ns).await;
    repeated_delivery_stores_each_item_once(store, ns).await;
    concurrent_duplicates_store_each_item_once(store, ns).await;
    same_message_in_different_bodies_is_stored_once(store, ns).await;
    statuses_only_move_forward_in_any_order(store, ns).await;
    status_for_a_message_never_stored_is_kept(store, ns).await;
    statuses_nobody_reads_are_not_stored(store, ns).await;
    concurrent_duplicates_keep_one_body(store, ns).await;
    reply_window_only_moves_forward(store, ns).await;
    timeline_orders_by_timestamp_then_arrival(store, ns).await;
    a_thousand_messages_in_one_delivery(store, ns).await;
    unreadable_bodies_are_kept_whole_and_replayable(store, ns).await;
    routed_deliveries_store_echoes_and_handovers_once(store, ns).await;
}

/// Conversation Routing's fields: the customer's message in `standby`, the AI's echo and the
/// handover go into the timeline once, however often Meta delivers them.
pub async fn routed_deliveries_store_echoes_and_handovers_once(store: &dyn Store, ns: &str) {
    let p = pnid(ns, "routed");
    let wa = "16505550077";
    let metadata = json!({"display_phone_number": "15550783881", "phone_number_id": p});
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": "standby", "value": {"metadata": metadata, "standby": {
            "contacts": [{"profile": {"name": "Routed Customer"}, "wa_id": wa}],
            "messages": [{"from": wa, "id": "wamid.r-in", "timestamp": "100", "type": "text", "text": {"body": "hi"}}],
            "message_echoes": [{"id": "wamid.r-echo", "timestamp": "101",
                "message": {"to": wa, "type": "text", "text": {"body": "hello, how can I help?"}}}]}}},
        {"field": "messaging_handovers", "value": {"sender": {"phone_number": wa},
            "recipient": {"phone_number_id": p, "display_phone_number": "15550783881"},
            "type": "control_passed", "timestamp": "102", "control_passed": {"metadata": "customer_request"}}}
    ]}]})
    .to_string()
    .into_bytes();
    let first = store.write_batch(&batch(body.clone(), 1)).await.unwrap();
    assert_eq!((first.messages_new, first.agent_events_new), (1, 2));
    let again = store.write_batch(&batch(body, 2)).await.unwrap();
    assert_eq!((again.messages_new, again.agent_events_new), (0, 0));
    let key = ConversationKey::new(p.as_str(), wa);
    let page = store.timeline_page(&key, None, 10).await.unwrap();
    let entries: Vec<(String, &str)> = page
        .entries
        .iter()
        .map(|e| match e {
            TimelineEntry::Message(m) => (m.wamid.clone(), "message"),
            TimelineEntry::Agent(a) => (a.event_id.clone(), a.kind.as_str()),
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("wamid.r-in".to_owned(), "message"),
            ("echo:wamid.r-echo".to_owned(), "message"),
            ("control_passed:102".to_owned(), "handoff"),
        ]
    );
    let conv = store.conversation(&key).await.unwrap().expect("stored");
    assert_eq!(conv.profile_name.as_deref(), Some("Routed Customer"));
}

pub async fn stores_a_delivery_and_reads_it_back(store: &dyn Store, ns: &str) {
    let p = pnid(ns, "basic");
    let b = batch(
        bodies::texts(&p, "16505551234", &[("wamid.a1", 100), ("wamid.a2", 101)]),
        1_000,
    );
    let report = store.write_batch(&b).await.expect("write");
    assert!(report.delivery_new);
    assert_eq!((report.messages_new, report.messages_duplicate), (2, 0));

    let key = ConversationKey::new(p.as_str(), "16505551234");
    let conv = store
        .conversation(&key)
        .await
        .unwrap()
        .expect("conversation stored");
    assert_eq!(conv.last_inbound_at, Some(101));
    assert_eq!(conv.profile_name.as_deref(), Some("Test Customer"));
    assert_eq!(conv.wa_id.as_deref(), Some("16505551234"));
    assert_eq!(conv.display_phone_number, "15550783881");
    assert_eq!(conv.reply_window().unwrap().closes_at(), 101 + 86_400);

    let msgs = all_messages(store, &key, 10).await;
    assert_eq!(msgs, b.messages, "messages read back exactly as written");

    // Its items stand for it whole: the body is not kept beside them.
    assert_eq!(store.delivery(&b.delivery.id).await.unwrap(), None);
    // One that cannot be read whole is kept, byte for byte, with what was understood of it.
    let partial = batch(
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"{p}"}},"messages":[{{"from":"1","type":"text","timestamp":"1"}}]}}}}]}}]}}"#
        )
        .into_bytes(),
        1_001,
    );
    assert_eq!(partial.delivery.state, ParseState::Partial);
    assert!(store.write_batch(&partial).await.unwrap().delivery_new);
    let d = store
        .delivery(&partial.delivery.id)
        .await
        .unwrap()
        .expect("a partial delivery is kept");
    assert_eq!(d, partial.delivery, "the raw delivery reads back exactly");
    assert!(
        store
            .conversation(&ConversationKey::new(p.as_str(), "nobody"))
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn repeated_delivery_stores_each_item_once(store: &dyn Store, ns: &str) {
    let p = pnid(ns, "repeat");
    let body = bodies::texts(
        &p,
        "16505550001",
        &[("wamid.r1", 10), ("wamid.r2", 11), ("wamid.r3", 12)],
    );
    let first = store.write_batch(&batch(body.clone(), 1)).await.unwrap();
    assert_eq!((first.delivery_new, first.messages_new), (true, 3));
    for i in 0..3 {
        // Meta's retry: same bytes, later arrival.
        let again = store
            .write_batch(&batch(body.clone(), 2 + i))
            .await
            .unwrap();
        assert!(!again.delivery_new);
        assert_eq!((again.messages_new, again.messages_duplicate), (0, 3));
    }
    let key = ConversationKey::new(p.as_str(), "16505550001");
    let msgs = all_messages(store, &key, 100).await;
    assert_eq!(msgs.len(), 3);
    assert!(
        msgs.iter().all(|m| m.received_at_ms == 1),
        "the first arrival is kept"
    );
}

pub async fn concurrent_duplicates_keep_one_body(store: &dyn Store, ns: &str) {
    let p = pnid(ns, "concurrent-kept");
    // Partial (a message without an id): the body is kept, once.
    let b = batch(
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"1","changes":[{{"field":"messages","value":{{"metadata":{{"phone_number_id":"{p}"}},"messages":[{{"from":"1","type":"text","timestamp":"1"}}]}}}}]}}]}}"#
        )
        .into_bytes(),
        7,
    );
    let w = || store.write_batch(&b);
    let (r1, r2, r3, r4, r5) = tokio::join!(w(), w(), w(), w(), w());
    let new = [r1, r2, r3, r4, r5]
        .into_iter()
        .filter(|r| {
            r.as_ref()
                .expect("every concurrent write succeeds")
                .delivery_new
        })
        .count();
    assert_eq!(new, 1);
}

pub async fn concurrent_duplicates_store_each_item_once(store: &dyn Store, ns: &str) {
    let p = pnid(ns, "concurrent");
    let b = batch(
        bodies::texts(&p, "16505550002", &bodies::numbered("wamid.c", 20, 50)),
        7,
    );
    let w = || store.write_batch(&b);
    let (r1, r2, r3, r4, r5) = tokio::join!(w(), w(), w(), w(), w());
    let reports = [r1, r2, r3, r4, r5];
    let reports: Vec<WriteReport> = reports
        .into_iter()
        .map(|r| r.expect("every concurrent write succeeds"))
        .collect();
    // A body read whole is not kept: a write is new exactly when it stored one of its items.
    assert!(
        reports
            .iter()
            .all(|r| r.delivery_new == (r.messages_new > 0)),
        "{reports:?}"
    );
    assert_eq!(
        reports.iter().map(|r| r.messages_new).sum::<u32>(),
        20,
        "{reports:?}"
    );
    assert_eq!(
        reports.iter().map(|r| r.messages_duplicate).sum::<u32>(),
        80,
        "{reports:?}"
    );
    let key = ConversationKey::new(p.as_str(), "16505550002");
    assert_eq!(all_messages(store, &key, 7).await.len(), 20);
}

pub async fn same_message_in_different_bodies_is_stored_once(store: &dyn Store, ns: &str) {
    let p = pnid(ns, "overlap");
    let wa = "16505550003";
    let a = write_texts(store, &p, wa, &[("wamid.o1", 1), ("wamid.o2", 2)], 1).await;
    let b = write_texts(store, &p, wa, &[("wamid.o2", 2), ("wamid.o3", 3)], 2).await;
    assert_eq!(
        (a.messages_new, b.messages_new, b.messages_duplicate),
        (2, 1, 1)
    );
    // The same message twice inside one body is one item too.
    let c = write_texts(store, &p, wa, &[("wamid.o4", 4), ("wamid.o4", 4)], 3).await;
    assert_eq!(c.messages_new, 1);
    let key = ConversationKey::new(p.as_str(), "16505550003");
    let ids: Vec<String> = all_messages(store, &key, 100)
        .await
        .into_iter()
        .map(|m| m.wamid)
        .collect();
    assert_eq!(ids, ["wamid.o1", "wamid.o2", "wamid.o3", "wamid.o4"]);
}

fn permutations(items: &[&'static str]) -> Vec<Vec<&'static str>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut p in permutations(&rest) {
            p.insert(0, first);
            out.push(p);
        }
    }
    out
}

pub async fn statuses_only_move_forward_in_any_order(store: &dyn Store, ns: &str) {
    let p = pnid(ns, "status");
    let recipient = "16505550004";
    let key = ConversationKey::new(p.as_str(), recipient);
    let cases: Vec<(Vec<&str>, &str)> = permutations(&["sent", "delivered", "read", "played"])
        .into_iter()
        .map(|order| (order, "played"))
        .chain(
            permutations(&["sent", "failed", "delivered"])
                .into_iter()
                .map(|order| (order, "failed")),
        )
        .chain([(vec!["read", "read", "sent", "read"], "read")])
        .collect();
    for (n, (order, expected)) in cases.iter().enumerate() {
        let wamid = format!("wamid.s{n}");
        let mut applied = 0;
        for (i, st) in order.iter().enumerate() {
            let body = bodies::delivery(
                &p,
                serde_json::Value::Null,
                serde_json::Value::Null,
                json!([bodies::reply_status(
                    &wamid,
                    recipient,
                    st,
                    1_000 + i as i64
                )]),
            );
            let r = store.write_batch(&batch(body, i as i64)).await.unwrap();
            assert_eq!(r.statuses_applied + r.statuses_stale, 1);
            applied += r.statuses_applied;
        }
        let stored = store
            .status(&key, &wamid)
            .await
            .unwrap()
            .expect("status stored");
        assert_eq!(stored.status, *expected, "order {order:?}");
        // Applied exactly when the status beat everything before it.
        let mut best = 0;
        let mut expected_applied = 0;
        for st in order {
            let rank = baton_shared::whatsapp::StatusKind::parse(st).rank();
            if rank > best {
                best = rank;
                expected_applied += 1;
            }
        }
        assert_eq!(applied, expected_applied, "order {order:?}");
    }
    // Several statuses of one message in one delivery: the furthest wins.
    let body = bodies::delivery(
        &p,
        serde_json::Value::Null,
        serde_json::Value::Null,
        json!([
            bodies::reply_status("wamid.multi", recipient, "read", 3),
            bodies::reply_status("wamid.multi", recipient, "sent", 1),
            bodies::reply_status("wamid.multi", recipient, "delivered", 2),
        ]),
    );
    store.write_batch(&batch(body, 1)).await.unwrap();
    let stored = store.status(&key, "wamid.multi").await.unwrap().unwrap();
    assert_eq!((stored.status.as_str(), stored.timestamp), ("read", 3));
}

pub async fn statuses_nobody_reads_are_not_stored(store: &dyn Store, ns: &str) {
    let p = pnid(ns, "unread");
    let recipient = "16505550009";
    // The AI agent's own message: its sent, delivered and read are read by no one.
    let body = bodies::delivery(
        &p,
        serde_json::Value::Null,
        serde_json::Value::Null,
        json!([
            bodies::status("wamid.agent", recipient, "sent", 1),
            bodies::status("wamid.agent", recipient, "read", 2),
        ]),
    );
    let b = batch(body, 1);
    let r = store.write_batch(&b).await.unwrap();
    assert_eq!((r.statuses_applied, r.statuses_stale), (0, 0));
    assert!(r.delivery_new, "nothing in it was a repeat");
    assert_eq!(
        b.delivery.state,
        ParseState::Parsed,
        "read, and deliberately not stored"
    );
    let key = ConversationKey::new(p.as_str(), recipient);
    assert_eq!(store.status(&key, "wamid.agent").await.unwrap(), None);
    assert_eq!(store.delivery(&b.delivery.id).await.unwrap(), None);
    // Its failure is stored, and so is every status of a reply Baton sent.
    let failed = bodies::delivery(
        &p,
        serde_json::Value::Null,
        serde_json::Value::Null,
        json!([bodies::status("wamid.agent", recipient, "failed", 3)]),
    );
    assert_eq!(
        store
            .write_batch(&batch(failed, 2))
            .await
            .unwrap()
            .statuses_applied,
        1
    );
    let ours = bodies::delivery(
        &p,
        serde_json::Value::Null,
        serde_json::Value::Null,
        json!([bodies::reply_status(
            "wamid.reply",
            recipient,
            "delivered",
            4
        )]),
    );
    assert_eq!(
        store
            .write_batch(&batch(ours, 3))
            .await
            .unwrap()
            .statuses_applied,
        1
    );
    assert_eq!(
        store
            .status(&key, "wamid.reply")
            .await
            .unwrap()
            .map(|s| s.status),
        Some("delivered".to_owned())
    );
}

pub async fn status_for_a_message_never_stored_is_kept(store: &dyn Store, ns: &str) {
    let p = pnid(ns, "orphan");
    let body = bodies::delivery(
        &p,
        serde_json::Value::Null,
        serde_json::Value::Null,
        json!([{
            "id": "wamid.never-sent-by-us", "status": "failed", "timestamp": "77", "recipient_id": "16505550005",
            "errors": [{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
                        "error_data": {"details": "More than 24 hours have passed"}}]
        }]),
    );
    let r = store.write_batch(&batch(body, 1)).await.unwrap();
    assert_eq!(r.statuses_applied, 1);
    let key = ConversationKey::new(p.as_str(), "16505550005");
    let st = store
        .status(&key, "wamid.never-sent-by-us")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((st.status.as_str(), st.errors[0].code), ("failed", 131047));
}

pub async fn reply_window_only_moves_forward(store: &dyn Store, ns: &str) {
    let p = pnid(ns, "window");
    let wa = "16505550006";
    let key = ConversationKey::new(p.as_str(), wa);
    write_texts(store, &p, wa, &[("wamid.w2", 2_000)], 1).await;
    // A late delivery of an older message does not move the window back.
    write_texts(store, &p, wa, &[("wamid.w1", 1_000)], 2).await;
    assert_eq!(last_inbound(store, &key).await, Some(2_000));
    // A status alone does not touch it.
    let body = bodies::delivery(
        &p,
        bodies::contact(wa, "Test Customer"),
        serde_json::Value::Null,
        json!([bodies::reply_status("wamid.out", wa, "read", 9_999)]),
    );
    store.write_batch(&batch(body, 3)).await.unwrap();
    assert_eq!(last_inbound(store, &key).await, Some(2_000));
    write_texts(store, &p, wa, &[("wamid.w3", 3_000)], 4).await;
    let conv = store.conversation(&key).await.unwrap().unwrap();
    assert_eq!(conv.last_inbound_at, Some(3_000));
    // A conversation first seen through a status has no window yet.
    let other = "16505550007";
    let body = bodies::delivery(
        &p,
        bodies::contact(other, "Someone"),
        serde_json::Value::Null,
        json!([bodies::reply_status("wamid.first", other, "sent", 5)]),
    );
    store.write_batch(&batch(body, 5)).await.unwrap();
    let conv = store
        .conversation(&ConversationKey::new(p.as_str(), other))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (conv.last_inbound_at, conv.profile_name.as_deref()),
        (None, Some("Someone"))
    );
}

pub async fn timeline_orders_by_timestamp_then_arrival(store: &dyn Store, ns: &str) {
    let p = pnid(ns, "order");
    let wa = "16505550008";
    // Arrives later but was written earlier: Meta's timestamp decides.
    write_texts(store, &p, wa, &[("wamid.t-late", 500)], 10).await;
    write_texts(store, &p, wa, &[("wamid.t-early", 400)], 20).await;
    // Equal timestamps: arrival order, across and within deliveries.
    write_texts(store, &p, wa, &[("wamid.z-first", 600)], 30).await;
    write_texts(
        store,
        &p,
        wa,
        &[("wamid.b-second", 600), ("wamid.a-third", 600)],
        40,
    )
    .await;
    let key = ConversationKey::new(p.as_str(), wa);
    for page_size in [1, 2, 100] {
        let ids: Vec<String> = all_messages(store, &key, page_size)
            .await
            .into_iter()
            .map(|m| m.wamid)
            .collect();
        assert_eq!(
            ids,
            [
                "wamid.t-early",
                "wamid.t-late",
                "wamid.z-first",
                "wamid.b-second",
                "wamid.a-third"
            ],
            "page size {page_size}"
        );
    }
}

pub async fn a_thousand_messages_in_one_delivery(store: &dyn Store, ns: &str) {
    let p = pnid(ns, "thousand");
    let wa = "16505550009";
    let msgs = bodies::numbered("wamid.k", 1000, 10_000);
    let ids: Vec<String> = msgs.iter().map(|(id, _)| id.clone()).collect();
    let b = batch(bodies::texts(&p, wa, &msgs), 1);
    let r = store.write_batch(&b).await.unwrap();
    assert_eq!(r.messages_new, 1000);
    let again = store.write_batch(&b).await.unwrap();
    assert_eq!((again.messages_new, again.messages_duplicate), (0, 1000));
    let key = ConversationKey::new(p.as_str(), wa);
    let read: Vec<String> = all_messages(store, &key, 250)
        .await
        .into_iter()
        .map(|m| m.wamid)
        .collect();
    assert_eq!(read, ids);
    assert_eq!(last_inbound(store, &key).await, Some(10_999));
}

pub async fn unreadable_bodies_are_kept_whole_and_replayable(store: &dyn Store, ns: &str) {
    // Not JSON at all.
    let garbage = format!("{ns} this is not JSON \u{00e9}").into_bytes();
    let b = batch(garbage.clone(), 42);
    assert_eq!(b.delivery.state, ParseState::Unparsed);
    assert!(store.write_batch(&b).await.unwrap().delivery_new);
    let d = store.delivery(&b.delivery.id).await.unwrap().unwrap();
    assert_eq!(
        (d.body.as_ref(), d.state),
        (garbage.as_slice(), ParseState::Unparsed)
    );
    assert!(!d.problems.is_empty());
    assert!(listed(store, &b.delivery.id).await);

    // A body near Meta's 3 MB limit, mostly incompressible, survives byte for byte.
    let mut big = Vec::with_capacity(MAX_BODY_BYTES);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ ns.len() as u64;
    while big.len() < MAX_BODY_BYTES - 64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        big.extend_from_slice(&x.to_le_bytes());
    }
    big.extend_from_slice(ns.as_bytes());
    let b = batch(big.clone(), 43);
    store.write_batch(&b).await.unwrap();
    let d = store.delivery(&b.delivery.id).await.unwrap().unwrap();
    assert!(d.body == big, "3 MB body read back intact");

    // Replaying a delivery that reads fine now takes it off the list and stores its messages.
    let p = pnid(ns, "replay");
    let mut replayed = batch(bodies::texts(&p, "16505550010", &[("wamid.rp1", 5)]), 44);
    replayed.delivery.state = ParseState::Unparsed; // as an older version would have marked it
    replayed.messages.clear();
    replayed.conversations.clear();
    store.write_batch(&replayed).await.unwrap();
    assert!(listed(store, &replayed.delivery.id).await);
    let stored = store
        .delivery(&replayed.delivery.id)
        .await
        .unwrap()
        .unwrap();
    let again = build_batch(stored.body, stored.received_at_ms, BatchOrigin::Replay);
    assert_eq!(again.delivery.state, ParseState::Parsed);
    let r = store.write_batch(&again).await.unwrap();
    assert_eq!((r.delivery_new, r.messages_new), (false, 1));
    assert!(!listed(store, &replayed.delivery.id).await);
    let d = store
        .delivery(&replayed.delivery.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((d.state, d.received_at_ms), (ParseState::Parsed, 44));
}

/// The handoff function's side of the contract: agent events in the timeline, episodes claimed
/// once, failure runs counted once and in order, media and handoffs never overwritten.
pub async fn run_handoff<
    S: Store + baton_shared::store::HandoffStore + baton_shared::store::TrailStore,
>(
    store: &S,
    ns: &str,
) {
    use baton_shared::domain::*;
    let p = pnid(ns, "handoff");
    let key = ConversationKey::new(p.as_str(), "16505551234");
    // Messages at t = 100..=105 and agent events in between, one of them at a message's second.
    write_texts(
        store,
        &p,
        "16505551234",
        &[("wamid.h0", 100), ("wamid.h1", 101), ("wamid.h2", 105)],
        1_000,
    )
    .await;
    let event = |id: &str, ts: i64, seq: u32, failed: bool| AgentEventRecord {
        conversation: key.clone(),
        event_id: id.to_owned(),
        kind: AgentEventKind::Message,
        timestamp: ts,
        received_at_ms: 2_000,
        seq,
        failed,
        raw: format!(
            r#"{{"id":"{id}","type":"message","phone_number_id":"{p}","customer":"16505551234","text":"x"}}"#
        ),
    };
    let events = [
        event("e1", 101, 0, true),
        event("e2", 103, 1, true),
        event("e3", 104, 2, false),
    ];
    let r = store
        .write_agent_events(&events)
        .await
        .expect("agent events");
    assert_eq!((r.events_new, r.events_duplicate), (3, 0));
    let r = store
        .write_agent_events(&events[..2])
        .await
        .expect("agent events again");
    assert_eq!((r.events_new, r.events_duplicate), (0, 2));

    // The timeline interleaves both kinds in order, page by page; messages_page stays messages.
    let mut order = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .timeline_page(&key, after.as_deref(), 2)
            .await
            .expect("timeline");
        assert!(page.entries.len() <= 2);
        order.extend(page.entries.iter().map(|e| match e {
            TimelineEntry::Message(m) => m.wamid.clone(),
            TimelineEntry::Agent(a) => a.event_id.clone(),
        }));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(
        order,
        ["wamid.h0", "wamid.h1", "e1", "e2", "e3", "wamid.h2"]
    );
    assert_eq!(all_messages(store, &key, 2).await.len(), 3);

    // Failure runs: counted once per event, in order; a success resets.
    for (event, failed, run, why) in [
        (0, true, 1, "a first failure"),
        (0, true, 1, "a redelivery counts nothing"),
        (1, true, 2, "the next failure"),
        (0, true, 2, "an older event counts nothing"),
        (2, false, 0, "a success resets"),
    ] {
        let order_key = events[event].order_key();
        let got = store.agent_outcome(&key, &order_key, failed).await.unwrap();
        assert_eq!(got, run, "{why}");
    }

    // Episodes: the first claim opens, later ones see who opened it.
    let first = store.claim_handoff(&key, "wamid.h1").await.unwrap();
    assert_eq!(
        (first.episode, first.trigger.as_str(), first.opened),
        (1, "wamid.h1", true)
    );
    let second = store.claim_handoff(&key, "e2").await.unwrap();
    assert_eq!(
        (second.episode, second.trigger.as_str(), second.opened),
        (1, "wamid.h1", false)
    );
    let other = ConversationKey::new(p.as_str(), "other-customer");
    assert!(
        store.claim_handoff(&other, "x").await.unwrap().opened,
        "episodes are per conversation"
    );

    // Media: a copied record is never replaced by a failed one.
    let media = |state: MediaState, error: Option<&str>| MediaRecord {
        conversation: key.clone(),
        wamid: "wamid.h1".into(),
        kind: "image".into(),
        media_id: "m1".into(),
        state,
        key: (state == MediaState::Copied).then(|| "media/a/b/image.jpg".to_owned()),
        content_type: Some("image/jpeg".into()),
        filename: "image.jpg".into(),
        bytes: Some(10),
        sha256_expected: None,
        sha256_matches: None,
        error: error.map(str::to_owned),
        retryable: state == MediaState::Failed,
        attempts: 1,
        updated_at_ms: 5,
    };
    assert!(store.media(&key, "wamid.h1").await.unwrap().is_none());
    store
        .save_media(&media(MediaState::Failed, Some("500")))
        .await
        .unwrap();
    assert_eq!(
        store.media(&key, "wamid.h1").await.unwrap().unwrap().state,
        MediaState::Failed
    );
    store
        .save_media(&media(MediaState::Copied, None))
        .await
        .unwrap();
    store
        .save_media(&media(MediaState::Failed, Some("late failure")))
        .await
        .unwrap();
    assert_eq!(
        store.media(&key, "wamid.h1").await.unwrap(),
        Some(media(MediaState::Copied, None))
    );

    // Handoffs: stored once.
    let record = HandoffRecord {
        id: HandoffRecord::id_for(&key, 1),
        conversation: key.clone(),
        episode: 1,
        trigger: Trigger {
            kind: TriggerKind::CustomerAsked,
            source_id: "wamid.h1".into(),
            at: 101,
            detail: "human".into(),
            language: Some("en".into()),
        },
        reason: Reason {
            category: "customer_request".into(),
            text: "asked".into(),
        },
        customer: Customer::default(),
        insights: Insights {
            language: Some("en".into()),
            language_source: Source::Builtin,
            sentiment: Sentiment {
                label: SentimentLabel::Neutral,
                score: 0.0,
                source: Source::Builtin,
            },
            summary: "s".into(),
            summary_source: Source::Builtin,
            summary_by: None,
            model_reason: None,
        },
        transcript: TranscriptRef {
            key: "transcripts/x.txt".into(),
            bytes: 1,
            messages: 3,
            agent_events: 3,
            last_order_key: None,
        },
        media: vec![media(MediaState::Copied, None)],
        reply_window_closes_at: Some(105 + 86_400),
        created_at_ms: 9,
        thread: None,
    };
    assert!(store.handoff(&record.id).await.unwrap().is_none());
    assert!(store.save_handoff(&record).await.unwrap());
    let mut changed = record.clone();
    changed.reason.text = "a second writer".into();
    assert!(
        !store.save_handoff(&changed).await.unwrap(),
        "the second write is refused"
    );
    assert_eq!(
        store.handoff(&record.id).await.unwrap(),
        Some(record.clone())
    );

    // The HubSpot trail: kept on an existing handoff only, replaced whole, and parked or retrying
    // handoffs are listed for a replay.
    assert!(store.trail(&record.id).await.unwrap().is_none());
    let mut trail = HubspotTrail {
        status: TrailStatus::InProgress,
        contact: Step::done("501", "created", 10),
        ticket: Step::skipped("no contact", 11),
        runs: 1,
        updated_at_ms: 11,
        ..Default::default()
    };
    store.save_trail(&record.id, &trail).await.unwrap();
    assert_eq!(
        store.trail(&record.id).await.unwrap().as_ref(),
        Some(&trail)
    );
    assert!(
        !store
            .unfinished_handoffs(100)
            .await
            .unwrap()
            .contains(&record.id)
    );
    trail.status = TrailStatus::Parked;
    trail.last_error = Some(TrailError {
        step: "ticket".into(),
        message: "Property values were not valid".into(),
        status: Some(400),
        correlation_id: Some("c-1".into()),
        retryable: false,
        at_ms: 12,
    });
    store.save_trail(&record.id, &trail).await.unwrap();
    assert!(
        store
            .unfinished_handoffs(10_000)
            .await
            .unwrap()
            .contains(&record.id)
    );
    assert_eq!(store.trail(&record.id).await.unwrap(), Some(trail.clone()));
    assert_eq!(
        store.handoff(&record.id).await.unwrap(),
        Some(record.clone()),
        "the trail leaves the handoff as it was"
    );
    let missing = format!("ho_missing_{ns}");
    assert!(matches!(
        store.save_trail(&missing, &trail).await,
        Err(StoreError::Rejected { .. })
    ));

    // Episodes end: only the open one, once; the next claim opens a new episode.
    assert_eq!(store.open_episode(&key).await.unwrap(), Some(1));
    assert!(
        !store.close_episode(&key, 2).await.unwrap(),
        "not the open episode"
    );
    assert!(store.close_episode(&key, 1).await.unwrap());
    assert!(
        !store.close_episode(&key, 1).await.unwrap(),
        "closed already"
    );
    assert_eq!(store.open_episode(&key).await.unwrap(), None);
    let reopened = store.claim_handoff(&key, "wamid.h2").await.unwrap();
    assert_eq!(
        (reopened.episode, reopened.trigger.as_str(), reopened.opened),
        (2, "wamid.h2", true)
    );
    assert_eq!(store.open_episode(&key).await.unwrap(), Some(2));

    // Ticket events: stored once by id, listed in id order with their progress.
    let message = all_messages(store, &key, 10)
        .await
        .pop()
        .expect("a message");
    let follow_up = TicketEvent::follow_up(&record, &message, None, Some(105 + 86_400), 20);
    let reply = TicketEvent {
        handoff_id: record.id.clone(),
        id: "rp#0000000000030#77#1".into(),
        conversation: key.clone(),
        received_at_ms: 30,
        kind: TicketEventKind::Reply {
            ticket_id: "77".into(),
            text: "Hello from the rep".into(),
            occurred_at_ms: 29,
        },
    };
    assert!(store.save_ticket_event(&reply).await.unwrap());
    assert!(store.save_ticket_event(&follow_up).await.unwrap());
    let mut again = reply.clone();
    again.received_at_ms = 31;
    assert!(
        !store.save_ticket_event(&again).await.unwrap(),
        "a redelivered event is the same event"
    );
    let listed = store.ticket_events(&record.id).await.unwrap();
    assert_eq!(
        listed.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>(),
        [follow_up.clone(), reply.clone()]
    );
    assert!(listed.iter().all(|(_, t)| *t == EventTrail::default()));
    let mut progress = EventTrail {
        status: TrailStatus::Done,
        runs: 1,
        updated_at_ms: 40,
        ..Default::default()
    };
    progress.set("send", Step::done("wamid.out", "text", 40));
    store
        .save_event_trail(&record.id, &reply.id, &progress)
        .await
        .unwrap();
    assert_eq!(
        store.ticket_event(&record.id, &reply.id).await.unwrap(),
        Some((reply.clone(), progress.clone()))
    );
    assert!(
        store
            .ticket_event(&record.id, "rp#none")
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        store
            .save_event_trail(&record.id, "rp#none", &progress)
            .await,
        Err(StoreError::Rejected { .. })
    ));
    assert!(
        !store
            .unfinished_events(10_000)
            .await
            .unwrap()
            .contains(&(record.id.clone(), reply.id.clone())),
        "a done event is finished"
    );
    let mut parked = EventTrail {
        status: TrailStatus::Parked,
        runs: 1,
        ..Default::default()
    };
    parked.set("note", Step::skipped("refused", 41));
    store
        .save_event_trail(&record.id, &follow_up.id, &parked)
        .await
        .unwrap();
    assert!(
        store
            .unfinished_events(10_000)
            .await
            .unwrap()
            .contains(&(record.id.clone(), follow_up.id.clone())),
        "a parked event is listed for a replay"
    );
    assert!(
        store.ticket_events(&missing).await.unwrap().is_empty(),
        "another handoff's events are not listed"
    );

    // Tickets are linked to their handoff.
    let link = TicketLink {
        ticket_id: format!("{ns}-77"),
        handoff_id: record.id.clone(),
        conversation: key.clone(),
        episode: 1,
    };
    assert!(store.ticket_link(&link.ticket_id).await.unwrap().is_none());
    store.link_ticket(&link).await.unwrap();
    store.link_ticket(&link).await.unwrap();
    assert_eq!(
        store.ticket_link(&link.ticket_id).await.unwrap(),
        Some(link)
    );
}

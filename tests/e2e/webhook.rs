//! The webhook's answer to every kind of input, good and bad, and what it stores — each run on
//! the embedded store and on DynamoDB Local.

use std::sync::Arc;

use baton_shared::domain::{
    BatchOrigin, ConversationKey, DeliveryId, MAX_BODY_BYTES, ParseState, build_batch,
};
use baton_shared::store::{DynamoDbStore, Store};
use baton_shared::whatsapp::sign;
use baton_testkit::bodies;
use baton_webhook::{ReplaySummary, replay_deliveries};
use http::{Request, StatusCode};
use serde_json::json;

use crate::support::*;

async fn stored_nothing(store: &dyn Store, body: &[u8]) {
    assert!(
        store
            .delivery(&DeliveryId::of(body))
            .await
            .unwrap()
            .is_none(),
        "nothing stored"
    );
}

async fn all_messages(store: &dyn Store, key: &ConversationKey) -> Vec<String> {
    let mut out = Vec::new();
    let mut after = None::<String>;
    loop {
        let page = store
            .messages_page(key, after.as_deref(), 500)
            .await
            .unwrap();
        out.extend(page.messages.into_iter().map(|m| m.wamid));
        match page.next {
            Some(n) => after = Some(n),
            None => return out,
        }
    }
}

/// Every case, against one store.
async fn every_case(store: Arc<dyn Store>) {
    handshake(store.clone()).await;
    signatures(store.clone()).await;
    unreadable_but_signed_bodies_are_kept(store.clone()).await;
    sizes(store.clone()).await;
    unknown_types_and_fields(store.clone()).await;
    real_fixtures_signed_as_meta_sends_them(store.clone()).await;
    many_messages_and_concurrent_duplicates(store.clone()).await;
    status_for_a_message_never_stored(store.clone()).await;
    routing(store).await;
}

#[tokio::test]
async fn every_case_on_the_embedded_store() {
    every_case(Arc::new(embedded_store())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_on_dynamodb_local() {
    let Some((store, _)) = dynamodb_store().await else {
        return;
    };
    every_case(Arc::new(store)).await;
}

async fn handshake(store: Arc<dyn Store>) {
    let app = webhook(store);
    let get = |q: &str| {
        Request::get(format!("/webhook?{q}"))
            .body(bytes::Bytes::new())
            .unwrap()
    };
    let resp = app
        .handle(get(
            "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=test-verify-token",
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(
        resp.body().as_ref(),
        b"1158201444",
        "the raw challenge, not JSON-quoted"
    );
    for bad in [
        "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=wrong",
        "hub.mode=subscribe&hub.verify_token=test-verify-token",
        "hub.mode=unsubscribe&hub.challenge=1158201444&hub.verify_token=test-verify-token",
        "hub.challenge=1158201444&hub.verify_token=test-verify-token",
        "",
    ] {
        let resp = app.handle(get(bad)).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{bad}");
        assert!(!String::from_utf8_lossy(resp.body()).contains("1158201444"));
    }
}

async fn signatures(store: Arc<dyn Store>) {
    let app = webhook(store.clone());
    let body = fixture("text.json");
    let good = sign(APP_SECRET, &body);
    let hex = &good["sha256=".len()..];
    let other_body_sig = sign(APP_SECRET, &fixture("image.json"));
    let refused: Vec<(&str, Vec<String>)> = vec![
        ("header missing", vec![]),
        ("valid signature of a different body", vec![other_body_sig]),
        ("sha1= prefix", vec![format!("sha1={hex}")]),
        ("no prefix", vec![hex.to_owned()]),
        ("truncated hex", vec![format!("sha256={}", &hex[..40])]),
        ("wrong secret", vec![sign("not-our-secret", &body)]),
        ("header duplicated", vec![good.clone(), good.clone()]),
        (
            "header joined by API Gateway",
            vec![format!("{good},{good}")],
        ),
    ];
    for (case, sigs) in &refused {
        let sigs: Vec<&str> = sigs.iter().map(String::as_str).collect();
        let (status, answer) = call(&app, post(body.clone(), &sigs)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("X-Hub-Signature-256")
                || answer["error"].as_str().unwrap().contains("signature"),
            "{case}: {answer}"
        );
        stored_nothing(store.as_ref(), &body).await;
    }
    // Upper-case hex is the same digest.
    let upper = format!("sha256={}", hex.to_uppercase());
    let (status, _) = call(&app, post(body.clone(), &[&upper])).await;
    assert_eq!(status, StatusCode::OK);
    // A secret being rotated out still verifies.
    let (status, answer) = call(
        &app,
        post(
            fixture("video.json"),
            &[&sign(OLD_APP_SECRET, &fixture("video.json"))],
        ),
    )
    .await;
    assert_eq!(
        (status, answer["messages_new"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    // Unsigned empty body: refused for its signature before anything else.
    let (status, _) = call(&app, post(Vec::new(), &[])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn unreadable_but_signed_bodies_are_kept(store: Arc<dyn Store>) {
    let app = webhook(store.clone());
    let text = fixture("text.json");
    let cases: Vec<(&str, Vec<u8>, ParseState)> = vec![
        ("non-JSON", b"hello, this is not JSON".to_vec(), ParseState::Unparsed),
        ("truncated", text[..text.len() / 2].to_vec(), ParseState::Unparsed),
        ("JSON of the wrong shape", br#"{"object":"whatsapp_business_account","entry":{"id":1}}"#.to_vec(), ParseState::Unparsed),
        ("a JSON array", b"[1,2,3]".to_vec(), ParseState::Unparsed),
        ("another object", br#"{"object":"instagram","entry":[]}"#.to_vec(), ParseState::Ignored),
        (
            "a message without an id",
            br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"p"},"messages":[{"from":"1","type":"text","timestamp":"1"}]}}]}]}"#.to_vec(),
            ParseState::Partial,
        ),
    ];
    for (case, body, state) in cases {
        let (status, answer) = call(&app, signed(body.clone())).await;
        assert_eq!(status, StatusCode::OK, "{case}: {answer}");
        assert_eq!(answer["state"], state.as_str(), "{case}: {answer}");
        let kept = store
            .delivery(&DeliveryId::of(&body))
            .await
            .unwrap()
            .expect(case);
        assert_eq!(
            kept.body.as_ref(),
            body.as_slice(),
            "{case}: kept byte for byte"
        );
        assert_eq!(kept.state, state, "{case}");
        let listed = store
            .replayable_deliveries(usize::MAX)
            .await
            .unwrap()
            .contains(&kept.id);
        assert_eq!(
            listed,
            state.replayable(),
            "{case}: listed for replay exactly when replayable"
        );
    }
    // Signed but empty: nothing to keep.
    let (status, answer) = call(&app, signed(Vec::new())).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("empty body"))
    );
    stored_nothing(store.as_ref(), b"").await;
}

async fn sizes(store: Arc<dyn Store>) {
    let app = webhook(store.clone());
    let mut huge = br#"{"object":"whatsapp_business_account","entry":[],"pad":""#.to_vec();
    huge.resize(4 * 1024 * 1024, b'x');
    let (status, _) = call(&app, signed(huge.clone())).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    stored_nothing(store.as_ref(), &huge).await;
    // Exactly at the limit is accepted (and kept, though it is no notification).
    huge.truncate(MAX_BODY_BYTES);
    let (status, answer) = call(&app, signed(huge.clone())).await;
    assert_eq!(
        (status, answer["state"].as_str()),
        (StatusCode::OK, Some("unparsed"))
    );
    assert_eq!(
        store
            .delivery(&DeliveryId::of(&huge))
            .await
            .unwrap()
            .unwrap()
            .body
            .len(),
        MAX_BODY_BYTES
    );
}

async fn unknown_types_and_fields(store: Arc<dyn Store>) {
    let app = webhook(store.clone());
    let p = unique("unknown");
    let body = bodies::delivery(
        &p,
        json!([{"profile": {"name": "X", "future_field": 1}, "wa_id": "16505550200", "brand_new": true}]),
        json!([
            {"from": "16505550200", "id": "wamid.holo", "timestamp": "100", "type": "hologram", "hologram": {"depth": 3}},
            {"from": "16505550200", "id": "wamid.txt", "timestamp": "101", "type": "text", "text": {"body": "hi", "new": 1}, "extra": [1]}
        ]),
        serde_json::Value::Null,
    );
    let (status, answer) = call(&app, signed(body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (answer["state"].as_str(), answer["messages_new"].as_u64()),
        (Some("parsed"), Some(2))
    );
    let key = ConversationKey::new(p.as_str(), "16505550200");
    let page = store.messages_page(&key, None, 10).await.unwrap();
    assert_eq!(page.messages[0].kind, "hologram");
    // The unknown payload is kept in the message's raw JSON, exactly as sent.
    assert!(
        page.messages[0].raw.contains(r#""hologram":{"depth":3}"#),
        "{}",
        page.messages[0].raw
    );
}

async fn real_fixtures_signed_as_meta_sends_them(store: Arc<dyn Store>) {
    let app = webhook(store.clone());
    // Meta signs the bytes it sends, \u escapes included: the signature must be over them as-is.
    let body = fixture("reaction_emoji_escaped.json");
    assert!(String::from_utf8_lossy(&body).contains(r"\ud83d\udc4d"));
    let (status, answer) = call(&app, signed(body.clone())).await;
    assert_eq!(
        (status, answer["messages_new"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    let key = ConversationKey::new("10634295353625", "15550000004");
    let page = store.messages_page(&key, None, 10).await.unwrap();
    assert!(
        page.messages[0].raw.contains(r"\ud83d\udc4d\ud83c\udffb"),
        "raw kept exactly as sent"
    );
    // A username customer without a phone number.
    let (status, _) = call(&app, signed(fixture("text_bsuid_username_no_phone.json"))).await;
    assert_eq!(status, StatusCode::OK);
    let conv = store
        .conversation(&ConversationKey::new(
            "106540352242922",
            "US.13491208655302741918",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (conv.wa_id, conv.username.as_deref()),
        (None, Some("@realsheenanelson"))
    );
    assert_eq!(conv.last_inbound_at, Some(1_749_416_383));
}

async fn many_messages_and_concurrent_duplicates(store: Arc<dyn Store>) {
    let app = webhook(store.clone());
    let p = unique("many");
    // All with one timestamp: arrival order decides.
    let msgs: Vec<(String, i64)> = bodies::numbered("wamid.m", 1000, 0)
        .into_iter()
        .map(|(id, _)| (id, 1_700_000_000))
        .collect();
    let ids: Vec<String> = msgs.iter().map(|(id, _)| id.clone()).collect();
    let body = bodies::texts(&p, "16505550300", &msgs);
    let (status, answer) = call(&app, signed(body.clone())).await;
    assert_eq!(
        (status, answer["messages_new"].as_u64()),
        (StatusCode::OK, Some(1000))
    );
    let key = ConversationKey::new(p.as_str(), "16505550300");
    assert_eq!(
        all_messages(store.as_ref(), &key).await,
        ids,
        "all 1000, in arrival order"
    );

    // The same body five times at once: one item per message.
    let p = unique("dup");
    let msgs = bodies::numbered("wamid.d", 30, 10);
    let ids: Vec<String> = msgs.iter().map(|(id, _)| id.clone()).collect();
    let body = bodies::texts(&p, "16505550301", &msgs);
    let send = || call(&app, signed(body.clone()));
    let results = tokio::join!(send(), send(), send(), send(), send());
    let results = [results.0, results.1, results.2, results.3, results.4];
    assert!(
        results.iter().all(|(s, _)| *s == StatusCode::OK),
        "{results:?}"
    );
    let new: u64 = results
        .iter()
        .map(|(_, a)| a["messages_new"].as_u64().unwrap())
        .sum();
    let dup: u64 = results
        .iter()
        .map(|(_, a)| a["messages_duplicate"].as_u64().unwrap())
        .sum();
    assert_eq!((new, dup), (30, 120), "{results:?}");
    // Read whole, the body is not kept: an answer calls it a duplicate exactly when it stored
    // none of its messages.
    assert!(
        results
            .iter()
            .all(|(_, a)| a["duplicate_delivery"] == (a["messages_new"].as_u64() == Some(0))),
        "{results:?}"
    );
    let key = ConversationKey::new(p.as_str(), "16505550301");
    assert_eq!(all_messages(store.as_ref(), &key).await, ids);
}

async fn status_for_a_message_never_stored(store: Arc<dyn Store>) {
    let app = webhook(store.clone());
    let (status, answer) = call(&app, signed(fixture("statuses_failed.json"))).await;
    assert_eq!(
        (status, answer["statuses_applied"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    let key = ConversationKey::new("106540352242922", "16505551234");
    let stored = || async {
        store
            .status(
                &key,
                "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA",
            )
            .await
            .unwrap()
            .unwrap()
    };
    let st = stored().await;
    assert_eq!((st.status.as_str(), st.errors[0].code), ("failed", 131049));
    // A later "delivered" for the same message does not undo the failure.
    let later = String::from_utf8(fixture("statuses_failed.json"))
        .unwrap()
        .replace(r#""status": "failed""#, r#""status": "delivered""#);
    let (_, answer) = call(&app, signed(later.into_bytes())).await;
    assert_eq!(answer["statuses_applied"].as_u64(), Some(0), "{answer}");
    assert_eq!(stored().await.status, "failed");
}

async fn routing(store: Arc<dyn Store>) {
    let app = webhook(store);
    let resp = app
        .handle(Request::put("/webhook").body(bytes::Bytes::new()).unwrap())
        .await;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "GET, POST");
    let resp = app
        .handle(
            Request::get("/elsewhere")
                .body(bytes::Bytes::new())
                .unwrap(),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_store_failure_answers_5xx_so_meta_delivers_again() {
    let Some(endpoint) = dynamodb_endpoint() else {
        return;
    };
    let client =
        aws_sdk_dynamodb::Client::from_conf(dynamodb_config(&endpoint, &RequestCounter::default()));
    let app = webhook(Arc::new(DynamoDbStore::new(client, "no-such-table")));
    let (status, answer) = call(&app, signed(fixture("text.json"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert!(
        !answer.to_string().contains("no-such-table"),
        "internal details stay in the logs"
    );
}

#[tokio::test]
async fn one_conditional_write_per_item_and_no_transaction() {
    let Some((store, counter)) = dynamodb_store().await else {
        return;
    };
    let app = webhook(Arc::new(store));
    for n in [1usize, 10, 25] {
        let p = unique("requests");
        let body = bodies::texts(&p, "16505550400", &bodies::numbered("wamid.q", n, 5));
        counter.take();
        let (status, _) = call(&app, signed(body.clone())).await;
        assert_eq!(status, StatusCode::OK);
        // The conversation, then each message; the body (read whole) is not kept.
        assert_eq!(counter.take() as usize, 1 + n, "{n} messages");
        // Meta's retry of the whole body: each item's condition finds it stored.
        let (_, answer) = call(&app, signed(body)).await;
        assert_eq!(answer["messages_duplicate"].as_u64(), Some(n as u64));
        assert_eq!(counter.take() as usize, 1 + n, "{n} messages, redelivered");
    }
}

/// A delivery an older Baton could not read is stored again by `baton-local replay`; one that
/// still can't be read stays listed.
async fn replay(store: Arc<dyn Store>) {
    let app = webhook(store.clone());
    let p = unique("replay");
    let body = bodies::texts(&p, "16505550600", &[("wamid.rp", 7)]);
    let mut kept = build_batch(body.into(), 1_234, BatchOrigin::Webhook);
    // As an older version that could not read it would have stored it.
    kept.delivery.state = ParseState::Unparsed;
    kept.messages.clear();
    kept.conversations.clear();
    store.write_batch(&kept).await.unwrap();
    let (status, _) = call(&app, signed(b"still not JSON".to_vec())).await;
    assert_eq!(status, StatusCode::OK);

    let summary = replay_deliveries(store.as_ref(), usize::MAX).await.unwrap();
    let expected = ReplaySummary {
        deliveries: 2,
        now_parsed: 1,
        still_unreadable: 1,
        messages_new: 1,
        statuses_applied: 0,
    };
    assert_eq!(summary, expected);
    let key = ConversationKey::new(p.as_str(), "16505550600");
    assert_eq!(all_messages(store.as_ref(), &key).await, ["wamid.rp"]);
    let conv = store.conversation(&key).await.unwrap().unwrap();
    assert_eq!(conv.last_inbound_at, Some(7));
    let d = store.delivery(&kept.delivery.id).await.unwrap().unwrap();
    assert_eq!(
        (d.state, d.received_at_ms),
        (ParseState::Parsed, 1_234),
        "arrival time kept"
    );

    // Again: only the unreadable one is left, and nothing is written twice.
    let again = replay_deliveries(store.as_ref(), usize::MAX).await.unwrap();
    assert_eq!(
        (again.deliveries, again.still_unreadable, again.messages_new),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn replay_on_the_embedded_store() {
    replay(Arc::new(embedded_store())).await;
}

#[tokio::test]
async fn replay_on_dynamodb_local() {
    let Some((store, _)) = dynamodb_store().await else {
        return;
    };
    replay(Arc::new(store)).await;
}

#[tokio::test]
async fn a_delivery_the_store_refuses_is_still_kept_for_replay() {
    let Some((store, _)) = dynamodb_store().await else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(store);
    let app = webhook(store.clone());
    // A message over DynamoDB's 400 KB item limit, in a body well under Meta's 3 MB.
    let mut x: u32 = 7;
    let text: String = (0..450_000)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            char::from(b'a' + (x >> 27) as u8 % 26)
        })
        .collect();
    let p = unique("refused");
    let body = bodies::delivery(
        &p,
        bodies::contact("16505550700", "Big Sender"),
        json!([bodies::text("wamid.huge", "16505550700", 1, &text)]),
        serde_json::Value::Null,
    );
    let (status, answer) = call(&app, signed(body.clone())).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["state"], "partial", "{answer}");
    assert!(
        answer["problems"].to_string().contains("the store refused"),
        "{answer}"
    );
    let kept = store
        .delivery(&DeliveryId::of(&body))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.body.as_ref(), body.as_slice(), "kept byte for byte");
    assert!(
        store
            .replayable_deliveries(usize::MAX)
            .await
            .unwrap()
            .contains(&kept.id)
    );

    // Meta's retry of it finds it kept: still 200, nothing new.
    let (status, answer) = call(&app, signed(body)).await;
    assert_eq!(
        (status, answer["duplicate_delivery"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{answer}"
    );
}

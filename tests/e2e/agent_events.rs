//! `POST /agent/events`: signed with the agent events secret, validated whole, stored once per
//! event id in the conversation's timeline; a signed body that can't be read is kept for replay.

use std::sync::Arc;

use baton_local::redb_store::RedbStore;
use baton_shared::domain::{ConversationKey, TimelineEntry};
use baton_shared::store::{ConversationReader, DeliveryLog, Store};
use baton_shared::whatsapp::sign;
use http::{Request, StatusCode};
use serde_json::json;

use crate::support::*;

fn store_and_app() -> (RedbStore, baton_webhook::Webhook) {
    let store = embedded_store();
    let app = webhook(Arc::new(store.clone()) as Arc<dyn Store>);
    (store, app)
}

fn event(id: &str) -> serde_json::Value {
    json!({"id": id, "type": "message", "phone_number_id": "1", "customer": "34600111222", "timestamp": 1_763_990_000, "text": "¡Hola! ¿En qué puedo ayudarte?"})
}

#[tokio::test]
async fn unsigned_or_mis_signed_events_get_401_and_nothing_is_stored() {
    let (store, app) = store_and_app();
    let body = json!(event("e1")).to_string();
    let unsigned = Request::post("/agent/events")
        .body(bytes::Bytes::from(body.clone()))
        .unwrap();
    let (status, answer) = call(&app, unsigned).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("X-Baton-Signature-256"),
        "{answer}"
    );
    let wrong = Request::post("/agent/events")
        .header("x-baton-signature-256", sign(APP_SECRET, body.as_bytes()))
        .body(bytes::Bytes::from(body))
        .unwrap();
    let (status, answer) = call(&app, wrong).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "Meta's secret does not sign agent events"
    );
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .ends_with("under any configured agent events secret"),
        "{answer}"
    );
    let page = store
        .timeline_page(&ConversationKey::new("1", "34600111222"), None, 10)
        .await
        .unwrap();
    assert!(page.entries.is_empty());
    assert!(store.replayable_deliveries(10).await.unwrap().is_empty());
    let get = Request::get("/agent/events")
        .body(bytes::Bytes::new())
        .unwrap();
    assert_eq!(call(&app, get).await.0, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn events_are_stored_once_in_the_conversation_timeline() {
    let (store, app) = store_and_app();
    let body = json!({"events": [event("e1"), event("e2")]}).to_string();
    let (status, answer) = call(&app, agent_post(body.clone())).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"events_new": 2, "events_duplicate": 0}));
    let (_, answer) = call(&app, agent_post(body)).await;
    assert_eq!(answer, json!({"events_new": 0, "events_duplicate": 2}));
    let page = store
        .timeline_page(&ConversationKey::new("1", "34600111222"), None, 10)
        .await
        .unwrap();
    let ids: Vec<_> = page
        .entries
        .iter()
        .map(|e| match e {
            TimelineEntry::Agent(a) => a.event_id.clone(),
            TimelineEntry::Message(m) => m.wamid.clone(),
        })
        .collect();
    assert_eq!(ids, ["e1", "e2"]);
}

#[tokio::test]
async fn a_signed_body_that_cannot_be_read_gets_400_is_kept_and_replays() {
    let (store, app) = store_and_app();
    // `type` misspelled: signed by the agent, so kept, and answered with the problem.
    let bad = json!({"events": [{"id": "e1", "type": "mesage", "phone_number_id": "1", "customer": "34600111222", "text": "x"}]}).to_string();
    let (status, answer) = call(&app, agent_post(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("events[0]: unknown variant `mesage`"),
        "{answer}"
    );
    let kept = store.replayable_deliveries(10).await.unwrap();
    assert_eq!(kept.len(), 1, "the body is kept for replay");
    let summary = baton_webhook::replay_deliveries(&store, 10).await.unwrap();
    assert_eq!(
        (summary.deliveries, summary.still_unreadable),
        (1, 1),
        "still unreadable, still listed"
    );
    assert_eq!(store.replayable_deliveries(10).await.unwrap().len(), 1);
    let too_big = vec![b' '; 1024 * 1024 + 1];
    let (status, _) = call(&app, agent_post(too_big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn without_an_agent_events_secret_every_event_is_refused() {
    let store = embedded_store();
    let secrets = baton_webhook::config::WebhookSecrets::from_source(&[
        ("WHATSAPP_APP_SECRET", APP_SECRET),
        ("WHATSAPP_VERIFY_TOKEN", VERIFY_TOKEN),
    ])
    .unwrap();
    let app = baton_webhook::Webhook::new(Arc::new(store), secrets);
    let (status, answer) = call(&app, agent_post(json!(event("e1")).to_string())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("AGENT_EVENTS_SECRET"),
        "{answer}"
    );
}

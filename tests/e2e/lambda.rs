//! The Lambda entry point: real API Gateway (HTTP API, payload 2.0) events, base64 bodies included,
//! go through `lambda_http`'s own decoding into the webhook handler.

use std::sync::Arc;

use base64::Engine;
use baton_shared::domain::{ConversationKey, DeliveryId};
use baton_shared::store::{ConversationReader, DeliveryLog};
use baton_shared::whatsapp::sign;
use baton_webhook::handle_lambda;

use baton_testkit::lambda_runtime::http_api_event;

use crate::support::*;

fn api_gateway_event(
    method: &str,
    query: &str,
    headers: serde_json::Value,
    body: Option<(&str, bool)>,
) -> String {
    http_api_event(method, "/webhook", "/webhook", query, headers, body).to_string()
}

pub(crate) async fn invoke(app: &baton_webhook::Webhook, event: &str) -> (u16, String) {
    let req = lambda_http::request::from_str(event).expect("API Gateway event parses");
    let resp = handle_lambda(app.clone().router(), req).await.unwrap();
    (
        resp.status().as_u16(),
        String::from_utf8_lossy(resp.body().as_ref()).into_owned(),
    )
}

#[tokio::test]
async fn base64_encoded_bodies_are_verified_over_their_decoded_bytes() {
    let store = Arc::new(embedded_store());
    let app = webhook(store.clone());
    // The fixture with \u escapes: re-encoding it as text would change the signed bytes.
    let body = fixture("reaction_emoji_escaped.json");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&body);
    let headers = serde_json::json!({"content-type": "application/json", "x-hub-signature-256": sign(APP_SECRET, &body)});
    let (status, answer) = invoke(
        &app,
        &api_gateway_event("POST", "", headers, Some((&b64, true))),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let key = ConversationKey::new("10634295353625", "15550000004");
    let messages = store.messages_page(&key, None, 5).await.unwrap().messages;
    assert_eq!(messages.len(), 1);
    // The message is stored as the signed bytes carried it, escapes and all.
    assert!(
        std::str::from_utf8(&body)
            .unwrap()
            .contains(&messages[0].raw),
        "{}",
        messages[0].raw
    );

    // Signed over the base64 text instead of the bytes: refused.
    let other = fixture("text.json");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&other);
    let headers = serde_json::json!({"x-hub-signature-256": sign(APP_SECRET, b64.as_bytes())});
    let (status, _) = invoke(
        &app,
        &api_gateway_event("POST", "", headers, Some((&b64, true))),
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        store
            .delivery(&DeliveryId::of(&other))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn plain_text_bodies_and_the_handshake_through_api_gateway() {
    let store = Arc::new(embedded_store());
    let app = webhook(store.clone());
    let body = String::from_utf8(fixture("text.json")).unwrap();
    let headers = serde_json::json!({"content-type": "application/json", "x-hub-signature-256": sign(APP_SECRET, body.as_bytes())});
    let (status, answer) = invoke(
        &app,
        &api_gateway_event("POST", "", headers, Some((&body, false))),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains(r#""messages_new":1"#), "{answer}");

    let q = "hub.mode=subscribe&hub.challenge=987654&hub.verify_token=test-verify-token";
    let (status, answer) = invoke(
        &app,
        &api_gateway_event("GET", q, serde_json::json!({}), None),
    )
    .await;
    assert_eq!((status, answer.as_str()), (200, "987654"));
    let q = "hub.mode=subscribe&hub.challenge=987654&hub.verify_token=nope";
    let (status, _) = invoke(
        &app,
        &api_gateway_event("GET", q, serde_json::json!({}), None),
    )
    .await;
    assert_eq!(status, 403);
}

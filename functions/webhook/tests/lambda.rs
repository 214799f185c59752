//! The `baton-webhook` binary as Lambda runs it, serving a session page: its settings from the
//! environment template.yaml sets and the stack's two secrets (moto's Secrets Manager), the table
//! on DynamoDB Local, the media bucket on s3s-fs, and one HTTP API event for
//! `GET /sessions/{id}?t=…` from a Lambda Runtime API served here. The page's file link is a
//! presigned URL that downloads the file from s3s-fs, which checks SigV4.

use baton_shared::domain::{
    BatchOrigin, ConversationKey, Customer, TicketEventKind, TicketLink, TranscriptRef, build_batch,
};
use baton_shared::media_keys::object_key;
use baton_shared::objects::{ObjectMeta, ObjectStore};
use baton_shared::session::SessionLinks;
use baton_shared::store::{DeliveryStore, HandoffStore, TicketStore};
use baton_testkit::bodies;
use baton_testkit::fixtures::{copied_file, handoff_record};
use baton_testkit::lambda_runtime::{
    REQUEST_ID, Running, RuntimeApi, Stack, http_api_event, json_lines,
};
use serde_json::{Value, json};

const PNID: &str = "106540352242922";
/// What template.yaml gives the webhook as PUBLIC_BASE_URL: HubSpot signs this URL.
const PUBLIC: &str = "https://abc123.execute-api.us-east-1.amazonaws.com";
const CUSTOMER: &str = "34612345678";

/// What WhatsApp's ids look like: base64 with the customer's number inside.
const WAMID: &str = "wamid.HBgLMzQ2MTIzNDU2NzgVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0MAA=";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_binary_stores_a_delivery_and_serves_the_session_page_with_presigned_files() {
    let Some(stack) = Stack::start().await else {
        return;
    };
    let (store, objects) = (&stack.store, &stack.objects);
    let s3 = &stack.emulators.s3;

    // A conversation with a photo, its copy in the bucket, and the handoff.
    let conv = ConversationKey::new(PNID, CUSTOMER);
    let now = baton_shared::clock::now_ms() / 1000;
    let photo_msg = json!({"from": CUSTOMER, "id": "wamid.photo", "timestamp": (now - 30).to_string(),
        "type": "image", "image": {"id": "m1", "mime_type": "image/jpeg", "sha256": "x", "caption": "the box"}});
    let body = bodies::delivery(
        PNID,
        bodies::contact(CUSTOMER, "Lucía"),
        json!([
            bodies::text("wamid.t1", CUSTOMER, now - 60, "llegó roto"),
            photo_msg
        ]),
        json!([]),
    );
    store
        .write_batch(&build_batch(body.into(), now * 1000, BatchOrigin::Webhook))
        .await
        .unwrap();
    let photo = (0..40_000u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>();
    let key = object_key(&conv, "wamid.photo", "photo.jpg");
    objects
        .put(&key, photo.clone().into(), &ObjectMeta::default())
        .await
        .unwrap();
    let media = copied_file(
        &conv,
        "wamid.photo",
        &key,
        "photo.jpg",
        "image/jpeg",
        40_000,
    );
    store.save_media(&media).await.unwrap();
    let transcript = TranscriptRef {
        key: "transcripts/lambda.txt".into(),
        bytes: 3,
        messages: 2,
        agent_events: 0,
        last_order_key: None,
    };
    let customer = Customer {
        wa_id: Some(CUSTOMER.into()),
        profile_name: Some("Lucía".into()),
        ..Default::default()
    };
    let h = handoff_record(conv, 1, customer, transcript, vec![media], now);
    assert!(store.save_handoff(&h).await.unwrap());

    // The stack's two secrets: the main one and the session-link key.
    let main = stack
        .secret(
            &json!({"WHATSAPP_APP_SECRET": "app-secret", "WHATSAPP_VERIFY_TOKEN": "verify",
            "AGENT_EVENTS_SECRET": "agent-secret", "WHATSAPP_ACCESS_TOKEN": "graph",
            "HUBSPOT_APP_SECRET": "hubspot-client-secret"}),
        )
        .await;
    let link_key = "the-stack-session-link-key";
    let sessions = stack
        .secret(&json!({"SESSION_LINK_SECRET": link_key}))
        .await;
    let links = SessionLinks::new("https://abc123", link_key.to_owned().into(), 30);
    let token = links.token(&h.id, now);

    // Two invocations: Meta's signed delivery of a new message, then the rep opening the page.
    let delivery = String::from_utf8(bodies::delivery(
        PNID,
        bodies::contact(CUSTOMER, "Lucía"),
        json!([bodies::text(WAMID, CUSTOMER, now - 10, "¿hay alguien?")]),
        json!([]),
    ))
    .unwrap();
    let signature = baton_shared::whatsapp::sign("app-secret", delivery.as_bytes());
    let post = http_api_event(
        "POST",
        "/webhook",
        "/webhook",
        "",
        json!({"content-type": "application/json", "x-hub-signature-256": signature}),
        Some((&delivery, false)),
    );
    let path = format!("/sessions/{}", h.id);
    let page = http_api_event(
        "GET",
        "/sessions/{id}",
        &path,
        &format!("t={token}"),
        json!({"accept": "text/html", "user-agent": "Mozilla/5.0"}),
        None,
    );
    // HubSpot reports a rep's reply on the handoff's ticket, signed (v3) for the public URL;
    // then the same request with another app's secret.
    store
        .link_ticket(&TicketLink {
            ticket_id: "7001".into(),
            handoff_id: h.id.clone(),
            conversation: h.conversation.clone(),
            episode: 1,
        })
        .await
        .unwrap();
    let events = json!([{"eventId": 41, "subscriptionId": 9, "portalId": 62515, "appId": 3,
        "occurredAt": now * 1000, "subscriptionType": "ticket.propertyChange", "attemptNumber": 0,
        "objectId": 7001, "changeSource": "CRM_UI", "propertyName": "baton_whatsapp_reply",
        "propertyValue": "Hola Lucía, ya lo miro."}])
    .to_string();
    let hubspot = |secret: &str| {
        use base64::Engine as _;
        use hmac::{KeyInit, Mac};
        let ts = baton_shared::clock::now_ms().to_string();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("POST{PUBLIC}/hubspot/events{events}{ts}").as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        http_api_event(
            "POST",
            "/hubspot/events",
            "/hubspot/events",
            "",
            json!({"content-type": "application/json", "x-hubspot-signature-v3": sig,
                   "x-hubspot-request-timestamp": ts,
                   "host": "abc123.execute-api.us-east-1.amazonaws.com"}),
            Some((&events, false)),
        )
    };
    let (reply, forged) = (hubspot("hubspot-client-secret"), hubspot("another-app"));
    let api = RuntimeApi::start(
        "baton-webhook",
        vec![
            post.to_string(),
            page.to_string(),
            reply.to_string(),
            forged.to_string(),
        ],
    )
    .await;
    let child = stack
        .command(&api, env!("CARGO_BIN_EXE_baton-webhook"))
        .env("BATON_SECRET_ARN", format!("{main},{sessions}"))
        .env("PUBLIC_BASE_URL", PUBLIC)
        .env("SESSION_LINK_TTL_DAYS", "30")
        .spawn()
        .expect("start baton-webhook");
    let mut child = Running(child);
    let (id, stored) = api.answer(0, &mut child).await;
    assert_eq!(id, format!("{REQUEST_ID}/response"), "{stored}");
    assert_eq!(stored["statusCode"], 200, "{stored}");
    let stored: Value = serde_json::from_str(stored["body"].as_str().unwrap()).unwrap();
    assert_eq!(stored["messages_new"], 1, "{stored}");
    let (id, answer) = api.answer(1, &mut child).await;
    assert_eq!(id, format!("{REQUEST_ID}/response"), "{answer}");
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(
        answer["headers"]["content-type"],
        "text/html; charset=utf-8"
    );
    let csp = answer["headers"]["content-security-policy"]
        .as_str()
        .unwrap();
    assert!(
        csp.contains(s3.as_str()),
        "the bucket's origin is allowed: {csp}"
    );
    let html = answer["body"].as_str().unwrap();
    assert!(html.contains("WhatsApp session with Lucía"), "{html}");
    assert!(html.contains("llegó roto"));
    assert!(html.contains("¿hay alguien?"), "the message just stored");

    // The photo's presigned URL downloads its bytes from s3s-fs.
    let src = html
        .split("<img src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the photo on the page")
        .replace("&amp;", "&");
    assert!(
        src.starts_with(s3.as_str()) && src.contains("X-Amz-Signature="),
        "{src}"
    );
    let res = reqwest::get(&src).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().to_vec(), photo);

    // The reply is stored once as an event on the handoff; the forged request stores nothing.
    let (_, answer) = api.answer(2, &mut child).await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let report: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(report["replies"], 1, "{report}");
    let (_, answer) = api.answer(3, &mut child).await;
    assert_eq!(answer["statusCode"], 401, "{answer}");
    let stored = store.ticket_events(&h.id).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(matches!(
        &stored[0].0.kind,
        TicketEventKind::Reply { text, ticket_id, .. } if text == "Hola Lucía, ya lo miro." && ticket_id == "7001"
    ));

    // JSON logs: the message by its correlation id and the customer masked, never the number
    // or the wamid that holds it; one EMF document per invocation.
    let out = child.stop_and_read();
    assert!(
        !out.contains(CUSTOMER),
        "the customer's number is in the logs: {out}"
    );
    assert!(!out.contains(WAMID), "the wamid is in the logs: {out}");
    assert!(!out.contains(link_key), "the link key is in the logs");
    assert!(
        !out.contains("hubspot-client-secret"),
        "a secret is in the logs"
    );
    assert!(!out.contains("ya lo miro"), "the rep's text is in the logs");
    let (logs, metrics) = json_lines(&out);
    let received = logs
        .iter()
        .find(|l| l["fields"]["message"] == "message received")
        .unwrap_or_else(|| panic!("no log of the message: {out}"));
    assert_eq!(
        received["fields"]["message_ref"],
        baton_shared::observe::message_ref(WAMID)
    );
    assert_eq!(received["fields"]["customer"], "+34*******78");
    assert_eq!(received["fields"]["kind"], "text");
    assert!(
        logs.iter()
            .any(|l| l["fields"]["message"] == "session page served"),
        "{out}"
    );
    assert_eq!(metrics.len(), 4, "{out}");
    for m in &metrics {
        assert_eq!(m["Function"], "webhook");
    }
    assert_eq!(
        (&metrics[0]["Deliveries"], &metrics[0]["MessagesNew"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(metrics[1]["SessionPageViews"], 1);
}

/// Set-up that fails on a request (here: the stack's secret cannot be read) fails that request
/// with the setting's name and leaves the process running, so the next request tries again
/// instead of the runtime starting a new process from scratch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_up_failure_fails_the_request_naming_the_setting_and_the_next_one_tries_again() {
    let Some(stack) = Stack::start().await else {
        return;
    };
    let handshake = http_api_event(
        "GET",
        "/webhook",
        "/webhook",
        "hub.mode=subscribe&hub.challenge=4242&hub.verify_token=t",
        json!({}),
        None,
    )
    .to_string();
    let api = RuntimeApi::start("baton-webhook", vec![handshake.clone(), handshake]).await;
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:baton-missing-AbCdEf";
    let child = stack
        .command(&api, env!("CARGO_BIN_EXE_baton-webhook"))
        .env("BATON_SECRET_ARN", missing)
        .spawn()
        .expect("start baton-webhook");
    let mut child = Running(child);
    for n in 0..2 {
        let (id, error) = api.answer(n, &mut child).await;
        assert_eq!(id, format!("{REQUEST_ID}/error"), "request {n}: {error}");
        assert!(
            error.to_string().contains("BATON_SECRET_ARN"),
            "request {n}: {error}"
        );
    }
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "the process is still running after two failed set-ups"
    );
}

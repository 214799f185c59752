//! The `baton-webhook` binary as Lambda runs it, serving a session page: its settings from the
//! environment template.yaml sets and the stack's two secrets (moto's Secrets Manager), the table
//! on DynamoDB Local, the media bucket on s3s-fs, and one HTTP API event for
//! `GET /sessions/{id}?t=…` from a Lambda Runtime API served here. The page's file link is a
//! presigned URL that downloads the file from s3s-fs, which checks SigV4.

use baton_shared::domain::{BatchOrigin, ConversationKey, Customer, TranscriptRef, build_batch};
use baton_shared::handoff::media::object_key;
use baton_shared::objects::{ObjectMeta, ObjectStore};
use baton_shared::session::SessionLinks;
use baton_shared::store::contract::bodies;
use baton_shared::store::{DeliveryStore, HandoffStore};
use baton_shared::testing::runtime::{
    Emulators, REQUEST_ID, Running, RuntimeApi, json_lines, stack_secret, stack_storage,
};
use baton_shared::testing::{copied_file, handoff_record};
use serde_json::{Value, json};

const PNID: &str = "106540352242922";
const CUSTOMER: &str = "34612345678";

/// What WhatsApp's ids look like: base64 with the customer's number inside.
const WAMID: &str = "wamid.HBgLMzQ2MTIzNDU2NzgVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0MAA=";

/// An HTTP API (payload 2.0) event for `method path?query` with `headers` and `body`.
fn http_api_event(
    method: &str,
    route: &str,
    path: &str,
    query: &str,
    headers: Value,
    body: Option<&str>,
) -> Value {
    let mut event = json!({
        "version": "2.0",
        "routeKey": format!("{method} {route}"),
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123", "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123", "requestId": "req-1", "routeKey": format!("{method} {route}"),
            "stage": "$default", "time": "24/Nov/2026:07:00:00 +0000", "timeEpoch": 1_795_590_000_000u64,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "Mozilla/5.0"}
        },
        "isBase64Encoded": false
    });
    if let Some(b) = body {
        event["body"] = json!(b);
    }
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_binary_stores_a_delivery_and_serves_the_session_page_with_presigned_files() {
    let Some(Emulators {
        dynamodb: ddb,
        s3,
        moto,
    }) = Emulators::from_env()
    else {
        return;
    };
    let (store, objects) = stack_storage(&ddb, &s3).await;

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
    };
    let customer = Customer {
        wa_id: Some(CUSTOMER.into()),
        profile_name: Some("Lucía".into()),
        ..Default::default()
    };
    let h = handoff_record(conv, 1, customer, transcript, vec![media], now);
    assert!(store.save_handoff(&h).await.unwrap());

    // The stack's two secrets: the main one and the session-link key.
    let main = stack_secret(
        &moto,
        &json!({"WHATSAPP_APP_SECRET": "app-secret", "WHATSAPP_VERIFY_TOKEN": "verify",
            "AGENT_EVENTS_SECRET": "agent-secret", "WHATSAPP_ACCESS_TOKEN": "graph"}),
    )
    .await;
    let link_key = "the-stack-session-link-key";
    let sessions = stack_secret(&moto, &json!({"SESSION_LINK_SECRET": link_key})).await;
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
        Some(&delivery),
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
    let api = RuntimeApi::start("baton-webhook", vec![post.to_string(), page.to_string()]).await;
    let child = api
        .command(env!("CARGO_BIN_EXE_baton-webhook"))
        .env("AWS_ENDPOINT_URL_DYNAMODB", &ddb)
        .env("AWS_ENDPOINT_URL_S3", &s3)
        .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", &moto)
        .env("BATON_S3_PATH_STYLE", "1")
        .env("TABLE_NAME", store.table())
        .env("MEDIA_BUCKET", objects.bucket())
        .env("BATON_SECRET_ARN", format!("{main},{sessions}"))
        .env(
            "PUBLIC_BASE_URL",
            "https://abc123.execute-api.us-east-1.amazonaws.com",
        )
        .env("SESSION_LINK_TTL_DAYS", "30")
        .env("RETENTION_DAYS", "30")
        .env("BATON_METRICS_NAMESPACE", "Baton/test-stack")
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
    assert!(csp.contains(&s3), "the bucket's origin is allowed: {csp}");
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
        src.starts_with(&s3) && src.contains("X-Amz-Signature="),
        "{src}"
    );
    let res = reqwest::get(&src).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().to_vec(), photo);

    // JSON logs: the message by its correlation id and the customer masked, never the number
    // or the wamid that holds it; one EMF document per invocation.
    let out = child.stop_and_read();
    assert!(
        !out.contains(CUSTOMER),
        "the customer's number is in the logs: {out}"
    );
    assert!(!out.contains(WAMID), "the wamid is in the logs: {out}");
    assert!(!out.contains(link_key), "the link key is in the logs");
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
    assert_eq!(metrics.len(), 2, "{out}");
    for m in &metrics {
        assert_eq!(m["Function"], "webhook");
    }
    assert_eq!(
        (&metrics[0]["Deliveries"], &metrics[0]["MessagesNew"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(metrics[1]["SessionPageViews"], 1);
}

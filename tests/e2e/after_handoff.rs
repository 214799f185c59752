//! After the handoff, end to end: signed WhatsApp webhooks and HubSpot webhooks into DynamoDB
//! Local, both stream consumers (the handoff function and the HubSpot function, as Lambda's event
//! source mappings feed them), the contract-strict HubSpot server, the local Graph API with its
//! send endpoint, and a local AI agent that checks Baton's signature.
//!
//! Follow-ups land on the open ticket; a rep's reply is sent once however often HubSpot delivers
//! its event; outside the window the template goes, or nothing and the ticket says why; a
//! `failed` 131047 status shows up on the ticket; closing the ticket ends the episode, and the
//! next request for a person opens a new ticket for the same contact.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use base64::Engine as _;
use baton_handoff::HandoffSettings;
use baton_hubspot::{Deliverer, HubspotClient, HubspotConfig};
use baton_local::Stage;
use baton_local::stream::StreamReader;
use baton_shared::domain::*;
use baton_shared::objects::ObjectStore;
use baton_shared::store::{HandoffStore, Store, TicketStore, TrailStore};
use baton_testkit::bodies;
use baton_testkit::hubspot::{HubspotServer, Options, TOKEN};
use baton_webhook::Webhook;
use hmac::{KeyInit, Mac};
use http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::handoff::{self, CUSTOMER, PNID, Rig};
use crate::support::*;
use baton_testkit::graph::{self, Fault};

const CLIENT_SECRET: &str = "test-hubspot-client-secret";
const PUBLIC: &str = "https://baton.example.com";
const TEMPLATE: &str = "support_follow_up";

fn now_ms() -> i64 {
    baton_shared::clock::now_ms()
}

/// HubSpot's v3 signature, written from HubSpot's instructions (not Baton's verifier).
fn sign_v3(secret: &str, method: &str, uri: &str, body: &[u8], timestamp: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(method.as_bytes());
    mac.update(uri.as_bytes());
    mac.update(body);
    mac.update(timestamp.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A HubSpot webhook request to Baton: `events` signed for the public URL at `at_ms`.
fn hubspot_request(events: &Value, secret: &str, at_ms: i64) -> Request<Bytes> {
    let body = Bytes::from(events.to_string());
    let ts = at_ms.to_string();
    let sig = sign_v3(
        secret,
        "POST",
        &format!("{PUBLIC}/hubspot/events"),
        &body,
        &ts,
    );
    Request::post("/hubspot/events")
        .header("content-type", "application/json")
        .header("host", "internal-gateway.example")
        .header("x-hubspot-signature-v3", sig)
        .header("x-hubspot-request-timestamp", ts)
        .body(body)
        .unwrap()
}

/// What the AI agent received: (signature header, body), and whether it is down (503).
#[derive(Default)]
struct AgentInbox {
    received: Mutex<Vec<(String, Vec<u8>)>>,
    down: std::sync::atomic::AtomicBool,
}

type Inbox = Arc<AgentInbox>;

async fn agent_inbox() -> (String, Inbox) {
    async fn take(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> StatusCode {
        if inbox.down.load(std::sync::atomic::Ordering::SeqCst) {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        let sig = headers
            .get("x-baton-signature-256")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        inbox.received.lock().unwrap().push((sig, body.to_vec()));
        StatusCode::NO_CONTENT
    }
    let inbox: Inbox = Arc::default();
    let app = axum::Router::new()
        .route("/baton", axum::routing::post(take))
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/baton", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, inbox)
}

/// What the agent was told, each checked against Baton's signature.
fn told(inbox: &Inbox) -> Vec<Value> {
    inbox
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|(sig, body)| {
            assert_eq!(
                *sig,
                baton_shared::whatsapp::sign(AGENT_SECRET, body),
                "signed with AGENT_EVENTS_SECRET"
            );
            serde_json::from_slice(body).unwrap()
        })
        .collect()
}

struct After {
    rig: Rig,
    hubspot_reader: StreamReader,
    stage: Stage,
    server: HubspotServer,
    /// The webhook with HubSpot's client secret, on the system clock (signatures expire).
    app: Webhook,
    inbox: Inbox,
}

async fn after(template: bool) -> Option<After> {
    after_with(template, "customer_name,ticket_id").await
}

/// Ticket-event retries as Baton makes them, with pauses of milliseconds, not seconds (the test
/// of a reply throttled forever keeps the real ones).
const QUICK_RETRIES: baton_shared::retry::Backoff = baton_shared::retry::Backoff::new(
    Duration::from_millis(5),
    Duration::from_millis(20),
    baton_hubspot::EVENT_RETRIES.attempts,
);

/// [`after`], the template's body parameters given.
async fn after_with(template: bool, params: &str) -> Option<After> {
    let rig = handoff::rig(HandoffSettings::default(), None).await?;
    after_on(rig, template, params, QUICK_RETRIES).await
}

/// [`after`] on `rig`, ticket events retried as `retries` says.
async fn after_on(
    rig: Rig,
    template: bool,
    params: &str,
    retries: baton_shared::retry::Backoff,
) -> Option<After> {
    let sdk = handoff::aws(&dynamodb_endpoint()?);
    let hubspot_reader = StreamReader::open(&sdk, rig.store.table(), None)
        .await
        .unwrap();
    let server = HubspotServer::start(Options::default()).await;
    let (agent_url, inbox) = agent_inbox().await;
    let mut vars = vec![
        ("HUBSPOT_ACCESS_TOKEN", TOKEN.to_owned()),
        ("HUBSPOT_BASE_URL", server.base_url()),
        ("WHATSAPP_ACCESS_TOKEN", graph::TOKEN.to_owned()),
        ("GRAPH_API_BASE_URL", rig.graph.base_url.clone()),
        ("GRAPH_API_VERSION", graph::VERSION.to_owned()),
        ("AGENT_WEBHOOK_URL", agent_url),
        ("AGENT_EVENTS_SECRET", AGENT_SECRET.to_owned()),
    ];
    if template {
        vars.push(("WHATSAPP_REPLY_TEMPLATE", TEMPLATE.to_owned()));
        vars.push(("WHATSAPP_REPLY_TEMPLATE_LANGUAGE", "es_MX".to_owned()));
        vars.push(("WHATSAPP_REPLY_TEMPLATE_PARAMS", params.to_owned()));
    }
    let cfg = HubspotConfig::from_source(&Vars(vars)).unwrap();
    let client = HubspotClient::from_config(&cfg).unwrap();
    let objects: Arc<dyn ObjectStore> = Arc::new(rig.objects.clone());
    let deliverer = Deliverer::new(cfg, client, Arc::new(rig.store.clone()), objects)
        .with_event_retries(retries);
    let mut secrets = secrets();
    secrets.hubspot_secrets = baton_shared::whatsapp::AppSecrets::parse(CLIENT_SECRET);
    let app = Webhook::new(Arc::new(rig.store.clone()) as Arc<dyn Store>, secrets)
        .with_public_base_url(Some(PUBLIC.to_owned()));
    Some(After {
        rig,
        hubspot_reader,
        stage: Stage::Hubspot(Arc::new(deliverer)),
        server,
        app,
        inbox,
    })
}

impl After {
    /// Runs both stream consumers until neither has anything left.
    async fn settle(&mut self) {
        for _ in 0..20 {
            let handoff = self.rig.run_stream(false).await;
            let hubspot = self
                .stage
                .drain_stream(&mut self.hubspot_reader)
                .await
                .unwrap();
            if handoff == 0 && hubspot == 0 {
                return;
            }
        }
        panic!("the stages never settled");
    }

    async fn customer_says(&self, wamid: &str, ts: i64, text: &str) {
        self.rig
            .deliver_twice(handoff::deliver(vec![bodies::text(
                wamid, CUSTOMER, ts, text,
            )]))
            .await;
    }

    /// The customer asks for a person: the handoff and its ticket.
    async fn handed_off(&mut self, wamid: &str, ts: i64, text: &str) -> (HandoffRecord, String) {
        self.customer_says(wamid, ts, text).await;
        self.settle().await;
        let h = self.rig.handoffs().await[0].clone();
        let ticket = self.ticket_of(&h.id).await;
        (h, ticket)
    }

    async fn hubspot(&self, req: Request<Bytes>) -> (StatusCode, Value) {
        call(&self.app, req).await
    }

    /// A rep sets the reply field on the ticket; HubSpot delivers its event `times` times.
    async fn rep_replies(&self, ticket: &str, text: &str, times: usize) -> Value {
        let event = self
            .server
            .rep_sets(ticket, REPLY_PROPERTY, text)
            .expect("the portal has Baton's reply property");
        for attempt in 0..times {
            let mut e = event.clone();
            e["attemptNumber"] = json!(attempt);
            let (status, answer) = self
                .hubspot(hubspot_request(&json!([e]), CLIENT_SECRET, now_ms()))
                .await;
            assert_eq!(status, StatusCode::OK, "{answer}");
        }
        event
    }

    /// `baton-local hubspot-replay`: every parked or retrying handoff and ticket event again.
    async fn hubspot_replay(&self) -> baton_hubspot::replay::ReplayReport {
        let Stage::Hubspot(deliverer) = &self.stage else {
            unreachable!("the HubSpot stage")
        };
        baton_hubspot::replay::replay(
            deliverer,
            &self.rig.store,
            &self.rig.store,
            tokio::time::Instant::now() + Duration::from_secs(30),
        )
        .await
    }

    /// The HubSpot ticket of a delivered handoff.
    async fn ticket_of(&self, handoff_id: &str) -> String {
        self.rig
            .store
            .trail(handoff_id)
            .await
            .unwrap()
            .and_then(|t| t.ticket.id)
            .expect("the handoff has its ticket")
    }

    fn ticket_notes(&self, ticket: &str) -> Vec<String> {
        let ids: Vec<String> = self
            .server
            .associated("tickets", ticket, "notes")
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        self.server
            .notes()
            .into_iter()
            .filter(|n| ids.contains(&n.id))
            .map(|n| n.properties["hs_note_body"].clone())
            .collect()
    }

    /// Waits for the copy of `wamid`'s file to land, then runs the stages until the file has
    /// followed on the ticket.
    async fn copy_lands(&mut self, conversation: &ConversationKey, wamid: &str) {
        for _ in 0..100 {
            if self
                .rig
                .store
                .media(conversation, wamid)
                .await
                .unwrap()
                .is_some()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The copy's file_landed event, then its run in the HubSpot stage.
        self.settle().await;
        self.settle().await;
    }

    async fn events(&self, handoff_id: &str) -> Vec<(TicketEvent, EventTrail)> {
        self.rig.store.ticket_events(handoff_id).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_replies_failures_and_the_close_of_a_ticket() {
    let Some(mut a) = after(false).await else {
        return;
    };
    let t = now_ms() / 1000 - 600;
    a.customer_says("wamid.a1", t, "My order 4471 never arrived.")
        .await;
    a.customer_says("wamid.a2", t + 10, "I want to talk to a human")
        .await;
    a.settle().await;
    let handoffs = a.rig.handoffs().await;
    assert_eq!(handoffs.len(), 1);
    let first = handoffs[0].clone();
    let trail = a.rig.store.trail(&first.id).await.unwrap().unwrap();
    assert_eq!(trail.status, TrailStatus::Done);
    let ticket = trail.ticket.id.clone().unwrap();
    let contact = trail.contact.id.clone().unwrap();
    assert_eq!(a.ticket_notes(&ticket).len(), 1, "the handoff note");
    assert_eq!(
        a.rig
            .store
            .ticket_link(&ticket)
            .await
            .unwrap()
            .unwrap()
            .handoff_id,
        first.id
    );

    // Follow-ups, a text and a photo, go to the open ticket as notes, the photo attached.
    let photo = handoff::pattern(30_000, 9);
    a.rig
        .graph
        .add("media-late-photo", photo.clone(), "image/jpeg", Fault::None);
    let mut image = handoff::message("image.json", "wamid.a3", t + 60);
    handoff::media(&mut image, "image", "media-late-photo", &photo, None);
    image["image"]["caption"] = json!("the box was empty <b>!</b>");
    a.rig
        .deliver_twice(handoff::deliver(vec![
            bodies::text("wamid.a4", CUSTOMER, t + 50, "Hello? Anyone there?"),
            image,
        ]))
        .await;
    a.settle().await;
    assert_eq!(
        a.rig.handoffs().await.len(),
        1,
        "follow-ups never open a handoff"
    );
    assert_eq!(a.server.tickets().len(), 1, "nor a ticket");
    let notes = a.ticket_notes(&ticket);
    assert_eq!(notes.len(), 3, "{notes:#?}");
    let text_note = notes
        .iter()
        .find(|n| n.contains("Hello? Anyone there?"))
        .expect("the text follow-up");
    assert!(text_note.contains("WhatsApp follow-up"), "{text_note}");
    let photo_note = notes
        .iter()
        .find(|n| n.contains("the box was empty &lt;b&gt;!&lt;/b&gt;"))
        .expect("the photo's caption, escaped");
    assert!(
        photo_note.contains("<strong>Attached</strong>"),
        "{photo_note}"
    );
    let photo_id = a
        .server
        .files()
        .into_iter()
        .find(|f| f.bytes == photo)
        .expect("the photo's bytes were uploaded")
        .id;
    let photo_note_obj = a
        .server
        .notes()
        .into_iter()
        .find(|n| n.properties["hs_note_body"] == *photo_note)
        .unwrap();
    assert_eq!(photo_note_obj.properties["hs_attachment_ids"], photo_id);
    // The reply window follows the customer's last message.
    let window = &a.server.tickets()[0].properties["baton_reply_window_closes_at"];
    assert_eq!(*window, ((t + 60 + 86_400) * 1000).to_string());

    // A rep replies; HubSpot delivers the event three times: one message goes out.
    let (status, _) = a
        .hubspot(hubspot_request(&json!([]), CLIENT_SECRET, now_ms()))
        .await;
    assert_eq!(status, StatusCode::OK);
    let reply_text = "Hi Maria, I'm Ana from support. A new parcel ships today.";
    let event = a.rep_replies(&ticket, reply_text, 3).await;
    a.settle().await;
    // ... and once more after it was sent.
    let (status, answer) = a
        .hubspot(hubspot_request(&json!([event]), CLIENT_SECRET, now_ms()))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["duplicates"], 1, "{answer}");
    a.settle().await;
    let sent = a.rig.graph.sent();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    let (pnid, body, wamid) = sent[0].clone();
    assert_eq!(pnid, PNID);
    assert_eq!(body["type"], "text");
    assert_eq!(body["to"], format!("+{CUSTOMER}"));
    assert_eq!(body["text"]["body"], reply_text);
    let callback = body["biz_opaque_callback_data"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(callback.starts_with(&format!("baton|{}|rp#", first.id)));
    let notes = a.ticket_notes(&ticket);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("✓ Sent on WhatsApp") && n.contains("A new parcel ships today")),
        "{notes:#?}"
    );
    assert_eq!(
        a.server.tickets()[0].properties[REPLY_PROPERTY],
        "",
        "the reply field is cleared for the next answer"
    );
    let told_now = told(&a.inbox);
    assert_eq!(told_now.len(), 1, "{told_now:#?}");
    assert_eq!(told_now[0]["owner"], "human");
    assert_eq!(told_now[0]["handoff_id"], first.id);
    assert_eq!(told_now[0]["ticket_id"], ticket);
    assert_eq!(told_now[0]["conversation"]["customer"], CUSTOMER);

    // Clearing the field is itself a change HubSpot reports: it sends nothing.
    let cleared = a.server.rep_sets(&ticket, REPLY_PROPERTY, "").unwrap();
    let (_, answer) = a
        .hubspot(hubspot_request(&json!([cleared]), CLIENT_SECRET, now_ms()))
        .await;
    assert_eq!(answer["ignored"], 1, "{answer}");

    // WhatsApp later reports the reply failed (131047): the ticket says so.
    let failed = bodies::delivery(
        PNID,
        Value::Null,
        json!([]),
        json!([{
            "id": wamid, "status": "failed", "timestamp": (t + 700).to_string(),
            "recipient_id": CUSTOMER, "biz_opaque_callback_data": callback,
            "errors": [{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
                        "error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."}}]
        }]),
    );
    a.rig.deliver_twice(failed).await;
    a.settle().await;
    let notes = a.ticket_notes(&ticket);
    let failure = notes
        .iter()
        .find(|n| n.contains("did not deliver your reply"))
        .unwrap_or_else(|| panic!("no failure note in {notes:#?}"));
    assert!(
        failure.contains("error 131047 (Re-engagement message)"),
        "{failure}"
    );
    assert!(failure.contains("WHATSAPP_REPLY_TEMPLATE"), "{failure}");
    assert!(
        failure.contains("A new parcel ships today"),
        "the reply it concerns"
    );
    assert_eq!(
        notes.len(),
        5,
        "handoff, 2 follow-ups, reply, failure: {notes:#?}"
    );

    // Forged, stale, unsigned and unconfigured HubSpot requests are refused and store nothing.
    let before = a.events(&first.id).await.len();
    let stage = json!([{"eventId": 91, "occurredAt": now_ms(), "subscriptionType": "ticket.propertyChange",
        "objectId": ticket.parse::<u64>().unwrap(), "propertyName": "hs_pipeline_stage", "propertyValue": "4"}]);
    let (status, answer) = a
        .hubspot(hubspot_request(&stage, "not-the-client-secret", now_ms()))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let (status, answer) = a
        .hubspot(hubspot_request(
            &stage,
            CLIENT_SECRET,
            now_ms() - 5 * 60 * 1000 - 1000,
        ))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert!(answer.to_string().contains("5 minutes"), "{answer}");
    let mut unsigned = hubspot_request(&stage, CLIENT_SECRET, now_ms());
    unsigned.headers_mut().remove("x-hubspot-signature-v3");
    assert_eq!(a.hubspot(unsigned).await.0, StatusCode::UNAUTHORIZED);
    let mut tampered = hubspot_request(&stage, CLIENT_SECRET, now_ms());
    *tampered.body_mut() = Bytes::from(stage.to_string().replace("\"4\"", "\"1\""));
    assert_eq!(a.hubspot(tampered).await.0, StatusCode::UNAUTHORIZED);
    let closed_app = webhook(Arc::new(a.rig.store.clone()) as Arc<dyn Store>);
    assert_eq!(
        call(
            &closed_app,
            hubspot_request(&stage, CLIENT_SECRET, now_ms())
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED,
        "without HUBSPOT_APP_SECRET"
    );
    assert_eq!(a.events(&first.id).await.len(), before);

    // The rep closes the ticket: the episode ends and the agent may answer again.
    let close = a
        .server
        .rep_sets(&ticket, "hs_pipeline_stage", "4")
        .unwrap();
    let (status, answer) = a
        .hubspot(hubspot_request(&json!([close]), CLIENT_SECRET, now_ms()))
        .await;
    assert_eq!(
        (status, answer["stage_changes"].clone()),
        (StatusCode::OK, json!(1))
    );
    a.settle().await;
    let told_now = told(&a.inbox);
    assert_eq!(told_now.len(), 2, "{told_now:#?}");
    assert_eq!(told_now[1]["owner"], "agent");
    assert_eq!(
        a.rig
            .store
            .open_episode(&ConversationKey::new(PNID, CUSTOMER))
            .await
            .unwrap(),
        None
    );
    let events = a.events(&first.id).await;
    assert!(
        events.iter().all(|(_, t)| t.status == TrailStatus::Done),
        "{events:#?}"
    );
    // The session page tells the same story.
    let links = baton_shared::session::SessionLinks::new(PUBLIC, "k".to_owned().into(), 30);
    let token = links.token(&first.id, now_ms() / 1000);
    let pages = baton_webhook::session_page::SessionPages::new(
        Arc::new(a.rig.store.clone()),
        Arc::new(a.rig.store.clone()),
        Arc::new(a.rig.objects.clone()),
        links,
    );
    let baton_webhook::session_page::Answer::Page { html, .. } =
        pages.answer(&first.id, &format!("t={token}")).await
    else {
        panic!("no page")
    };
    for want in [
        "On the ticket since the handoff",
        "The customer wrote again (text)",
        "The customer wrote again (image)",
        "A rep replied: “Hi Maria, I&#39;m Ana from support.",
        "sent on WhatsApp (text), message wamid.OUT1",
        "WhatsApp did not deliver a reply (error 131047)",
        "The ticket moved to stage 4",
        "handoff closed",
        "The AI agent is told: human answers",
        "The AI agent is told: agent answers",
    ] {
        assert!(html.contains(want), "{want:?} not on the page");
    }

    // A message after the close is no follow-up; the next request for a person is a new
    // handoff and a new ticket, for the same contact.
    a.customer_says("wamid.a5", t + 900, "Thanks, bye").await;
    a.settle().await;
    assert_eq!(
        a.ticket_notes(&ticket).len(),
        5,
        "nothing more on the closed ticket"
    );
    a.customer_says(
        "wamid.a6",
        t + 1000,
        "It still hasn't arrived. Let me speak to a person",
    )
    .await;
    a.settle().await;
    let handoffs = a.rig.handoffs().await;
    assert_eq!(handoffs.len(), 2);
    let second = handoffs.iter().find(|h| h.id != first.id).unwrap();
    assert_eq!(second.episode, 2);
    let tickets = a.server.tickets();
    assert_eq!(tickets.len(), 2);
    let second_ticket = a.ticket_of(&second.id).await;
    assert_ne!(second_ticket, ticket);
    assert_eq!(a.server.contacts().len(), 1);
    for id in [&ticket, &second_ticket] {
        let contacts: Vec<String> = a
            .server
            .associated("tickets", id, "contacts")
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        assert_eq!(contacts, std::slice::from_ref(&contact), "ticket {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_window_a_reply_sends_the_template_or_says_why_not() {
    for template in [false, true] {
        let Some(mut a) = after(template).await else {
            return;
        };
        // The customer last wrote two days ago.
        let t = now_ms() / 1000 - 2 * 86_400;
        a.customer_says("wamid.b1", t, "Can I speak to a person about my refund?")
            .await;
        a.settle().await;
        let h = a.rig.handoffs().await[0].clone();
        let ticket = a.ticket_of(&h.id).await;
        if template {
            // Meta throttles the first attempt: the event is retried and sent once.
            a.rig.graph.fail_next_send(130429);
        }
        a.rep_replies(&ticket, "Your refund was approved.", 1).await;
        a.settle().await;
        let sent = a.rig.graph.sent();
        let notes = a.ticket_notes(&ticket);
        let events = a.events(&h.id).await;
        let reply = events
            .iter()
            .find(|(e, _)| matches!(e.kind, TicketEventKind::Reply { .. }))
            .unwrap();
        assert_eq!(reply.1.status, TrailStatus::Done, "{reply:#?}");
        if template {
            assert_eq!(sent.len(), 1, "{sent:#?}");
            let body = &sent[0].1;
            assert_eq!(body["type"], "template");
            assert_eq!(body["template"]["name"], TEMPLATE);
            assert_eq!(body["template"]["language"]["code"], "es_MX");
            let params: Vec<&str> = body["template"]["components"][0]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["text"].as_str().unwrap())
                .collect();
            assert_eq!(params, ["Maria Lopez", ticket.as_str()]);
            assert_eq!(reply.1.runs, 2, "the throttled attempt was retried");
            assert!(
                notes
                    .iter()
                    .any(|n| n.contains("Template “support_follow_up” sent")),
                "{notes:#?}"
            );
            assert_eq!(told(&a.inbox)[0]["owner"], "human");
        } else {
            assert!(sent.is_empty(), "{sent:#?}");
            let note = notes
                .iter()
                .find(|n| n.contains("Not sent on WhatsApp"))
                .unwrap_or_else(|| panic!("{notes:#?}"));
            assert!(note.contains("24-hour reply window closed at"), "{note}");
            assert!(note.contains("WHATSAPP_REPLY_TEMPLATE"), "{note}");
            assert!(note.contains("Your refund was approved."), "{note}");
            assert!(told(&a.inbox).is_empty(), "nobody answered the customer");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_whose_send_was_cut_short_is_never_sent_twice() {
    let Some(mut a) = after(false).await else {
        return;
    };
    let t = now_ms() / 1000 - 60;
    let (h, ticket) = a.handed_off("wamid.c1", t, "Please get me a human").await;
    a.rep_replies(&ticket, "On it!", 1).await;
    // A previous run marked the send and stopped before Meta's answer was saved.
    let (reply, _) = a
        .events(&h.id)
        .await
        .into_iter()
        .find(|(e, _)| matches!(e.kind, TicketEventKind::Reply { .. }))
        .unwrap();
    let mut cut = EventTrail {
        status: TrailStatus::InProgress,
        runs: 1,
        ..EventTrail::default()
    };
    cut.set(
        "send",
        Step {
            state: StepState::Pending,
            id: None,
            how: Some("sending".into()),
            at_ms: Some(now_ms()),
        },
    );
    a.rig
        .store
        .save_event_trail(&h.id, &reply.id, &cut)
        .await
        .unwrap();
    a.settle().await;
    assert!(a.rig.graph.sent().is_empty(), "not sent a second time");
    let (_, trail) = a
        .rig
        .store
        .ticket_event(&h.id, &reply.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(trail.status, TrailStatus::Done);
    assert_eq!(trail.step("send").unwrap().state, StepState::Skipped);
    let notes = a.ticket_notes(&ticket);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("Not known whether this reached WhatsApp")
                && n.contains("may or may not have reached")),
        "{notes:#?}"
    );
    // Meta refuses the next reply for good (131026): nothing goes out, the ticket says why, and
    // the agent is not told a person answered.
    a.rig.graph.fail_next_send(131026);
    a.rep_replies(&ticket, "Second try", 1).await;
    a.settle().await;
    assert!(a.rig.graph.sent().is_empty(), "{:?}", a.rig.graph.sent());
    let notes = a.ticket_notes(&ticket);
    let refused = notes
        .iter()
        .find(|n| n.contains("Second try"))
        .unwrap_or_else(|| panic!("{notes:#?}"));
    assert!(refused.contains("Not sent on WhatsApp"), "{refused}");
    assert!(
        refused.contains("WhatsApp refused the request (HTTP 400, error 131026)"),
        "{refused}"
    );
    assert!(
        a.events(&h.id)
            .await
            .iter()
            .all(|(_, t)| t.status == TrailStatus::Done),
        "refused for good is done, not retried"
    );
    assert!(told(&a.inbox).is_empty(), "nobody answered the customer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_hubspot_refused_is_parked_with_its_reason_and_replayed() {
    let Some(mut a) = after(false).await else {
        return;
    };
    let t = now_ms() / 1000 - 60;
    a.customer_says("wamid.d1", t, "I want to talk to a human")
        .await;
    a.settle().await;
    let h = a.rig.handoffs().await[0].clone();
    a.server.inject(
        http::Method::POST,
        "/crm/objects/2026-09/notes",
        baton_testkit::hubspot::Fault::Status(400),
    );
    a.customer_says("wamid.d2", t + 5, "Order 5521, if that helps")
        .await;
    a.settle().await;
    let (event, trail) = a.events(&h.id).await.pop().unwrap();
    assert!(matches!(event.kind, TicketEventKind::FollowUp { .. }));
    assert_eq!(trail.status, TrailStatus::Parked, "{trail:#?}");
    let error = trail.last_error.clone().unwrap();
    assert_eq!((error.step.as_str(), error.status), ("note", Some(400)));
    let report = a.hubspot_replay().await;
    assert_eq!(
        (
            report.events_done,
            report.events_parked,
            report.events_failed
        ),
        (1, 0, 0),
        "{report:?}"
    );
    let ticket = a.ticket_of(&h.id).await;
    let notes = a.ticket_notes(&ticket);
    assert_eq!(
        notes
            .iter()
            .filter(|n| n.contains("Order 5521, if that helps"))
            .count(),
        1,
        "{notes:#?}"
    );
}

/// With Conversation Routing on and no integration at all: the AI agent owns the thread, Baton
/// hears the conversation through `standby` alone, Meta's `control_passed` opens the ticket, a
/// rep's reply takes the thread back from the AI, and closing the ticket releases it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_conversation_routing_meta_alone_tells_baton_everything() {
    use baton_testkit::graph::Owner;
    let Some(mut a) = after(false).await else {
        return;
    };
    let graph = a.rig.graph.clone();
    graph.route_thread(PNID, CUSTOMER, Owner::Primary);
    let t = now_ms() / 1000 - 600;
    // Only standby, every delivery twice: the customer, and the AI's replies as echoes.
    for body in [
        graph.standby_message(
            PNID,
            CUSTOMER,
            "Ana Ruiz",
            "wamid.r1",
            t,
            "My order 48213 arrived broken.",
        ),
        graph.standby_echo(
            PNID,
            CUSTOMER,
            "wamid.ai1",
            t + 5,
            "I'm sorry! Let me look at order 48213.",
        ),
        graph.standby_message(
            PNID,
            CUSTOMER,
            "Ana Ruiz",
            "wamid.r2",
            t + 20,
            "It is the second time this happens.",
        ),
        graph.standby_echo(
            PNID,
            CUSTOMER,
            "wamid.ai2",
            t + 25,
            "I am passing you to a colleague who can refund it.",
        ),
    ] {
        a.rig.deliver_twice(body).await;
    }
    a.settle().await;
    assert!(
        a.rig.handoffs().await.is_empty(),
        "nothing asks for a person yet"
    );

    // The AI passes the thread to Baton: one ticket, Meta's reason and summary on it.
    let summary = "Order 48213 arrived broken for the second time; the customer wants a refund.";
    let passed = graph.pass_to_baton(PNID, CUSTOMER, t + 30, "customer_request", Some(summary));
    a.rig.deliver_twice(passed.clone()).await;
    a.settle().await;
    let handoffs = a.rig.handoffs().await;
    assert_eq!(handoffs.len(), 1);
    let h = handoffs[0].clone();
    assert_eq!(h.trigger.kind, TriggerKind::ControlPassed);
    assert_eq!(h.reason.category, "customer_request");
    assert_eq!(h.thread, Some(ThreadOwner::Baton));
    assert_eq!(
        h.insights.summary, summary,
        "Meta's summary wins over the built-in one"
    );
    assert_eq!((h.transcript.messages, h.transcript.agent_events), (2, 3));
    let ticket = a.ticket_of(&h.id).await;
    let content = a.server.tickets()[0].properties["content"].clone();
    let at = |needle: &str| {
        content
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in\n{content}"))
    };
    assert!(
        at("Customer (Ana Ruiz): My order 48213 arrived broken.")
            < at("AI agent: I'm sorry! Let me look at order 48213.")
            && at("AI agent: I'm sorry!") < at("Customer (Ana Ruiz): It is the second time")
            && at("It is the second time") < at("AI agent: I am passing you to a colleague")
            && at("a colleague who can refund it.")
                < at(
                    "the AI agent passed the WhatsApp thread to Baton (Meta Conversation Routing)"
                ),
        "{content}"
    );
    let notes = a.ticket_notes(&ticket);
    assert_eq!(notes.len(), 1);
    assert!(notes[0].contains(summary), "{}", notes[0]);

    // control_passed again, after the ticket exists: nothing new.
    a.rig.deliver_twice(passed).await;
    a.settle().await;
    assert_eq!(a.rig.handoffs().await.len(), 1);
    assert_eq!(a.server.tickets().len(), 1);

    // The AI takes the thread back: the ticket says so.
    a.rig
        .deliver_twice(graph.take_from_baton(PNID, CUSTOMER, t + 40, "The AI agent resumed"))
        .await;
    a.settle().await;
    let notes = a.ticket_notes(&ticket);
    assert_eq!(notes.len(), 2, "{notes:#?}");
    assert!(
        notes.iter().any(|n| n.contains("WhatsApp thread taken")
            && n.contains("(now with the ai_agent role): The AI agent resumed")),
        "{notes:#?}"
    );

    // A rep's reply takes the thread (Meta's rule for the escalation partner), once, however
    // often HubSpot delivers the event; the note says so.
    a.rep_replies(&ticket, "We are sending a replacement today.", 2)
        .await;
    a.settle().await;
    assert_eq!(graph.sent().len(), 1);
    assert_eq!(graph.thread_owner(PNID, CUSTOMER), Some(Owner::Baton));
    let reply = a
        .ticket_notes(&ticket)
        .into_iter()
        .find(|n| n.contains("We are sending a replacement today."))
        .expect("the reply note");
    assert!(
        reply.contains("Sent on WhatsApp")
            && reply.contains("WhatsApp thread taken over</strong> from another partner"),
        "{reply}"
    );

    // Closing the ticket gives the thread back: released (the default), once.
    let close = a
        .server
        .rep_sets(&ticket, "hs_pipeline_stage", "4")
        .unwrap();
    for _ in 0..2 {
        let (status, _) = a
            .hubspot(hubspot_request(&json!([close]), CLIENT_SECRET, now_ms()))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    a.settle().await;
    let calls = graph.thread_calls();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!(calls[0]["action"], "release");
    assert_eq!(calls[0]["to"], CUSTOMER);
    assert_eq!(graph.thread_owner(PNID, CUSTOMER), Some(Owner::Idle));
    let trail = a.rig.store.trail(&h.id).await.unwrap().unwrap();
    assert_eq!(trail.thread, Some(ThreadOwner::Idle));
}

/// Baton only a standby partner: a rep's reply is refused by Meta, and the ticket says what to
/// change in Meta Business Suite instead of retrying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_meta_refuses_for_the_thread_is_explained_and_not_retried() {
    use baton_testkit::graph::Owner;
    let Some(mut a) = after(false).await else {
        return;
    };
    let graph = a.rig.graph.clone();
    let t = now_ms() / 1000 - 600;
    let (h, ticket) = a
        .handed_off("wamid.s1", t, "I want to talk to a human")
        .await;
    // Routing turned on, the AI owning the thread, Baton not the escalation partner.
    graph.route_thread(PNID, CUSTOMER, Owner::Primary);
    graph.set_escalation_partner(false);
    a.rep_replies(&ticket, "Hello from the support team.", 1)
        .await;
    a.settle().await;
    assert!(graph.sent().is_empty());
    let reply = a
        .ticket_notes(&ticket)
        .into_iter()
        .find(|n| n.contains("Hello from the support team."))
        .expect("the reply note");
    assert!(
        reply.contains("Not sent on WhatsApp")
            && reply.contains("error 100/2494191")
            && reply.contains("make Baton&#39;s app the escalation partner"),
        "{reply}"
    );
    let events = a.events(&h.id).await;
    let (_, trail) = events
        .iter()
        .find(|(e, _)| matches!(e.kind, TicketEventKind::Reply { .. }))
        .unwrap();
    assert_eq!(trail.status, TrailStatus::Done, "reported, not retried");
}

/// The hand-back on close: Meta's outage is retried until the thread is released; Meta's
/// refusal (the thread was no longer Baton's) parks the event with Meta's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_back_is_retried_through_an_outage_and_parked_when_meta_refuses() {
    use baton_testkit::graph::Owner;
    let Some(mut a) = after(false).await else {
        return;
    };
    let graph = a.rig.graph.clone();
    let t = now_ms() / 1000 - 600;
    let other = "16505559999";
    for customer in [CUSTOMER, other] {
        a.rig
            .deliver_twice(graph.pass_to_baton(PNID, customer, t, "customer_request", None))
            .await;
    }
    a.settle().await;
    let handoffs = a.rig.handoffs().await;
    assert_eq!(handoffs.len(), 2);
    let close = |a: &After, ticket: &str| {
        let event = a.server.rep_sets(ticket, "hs_pipeline_stage", "4").unwrap();
        hubspot_request(&json!([event]), CLIENT_SECRET, now_ms())
    };
    let of = |customer: &str| {
        handoffs
            .iter()
            .find(|h| h.conversation.customer == customer)
            .unwrap()
            .clone()
    };

    // Meta is down for the first attempt: the stream retries, and the thread is released once.
    let first = of(CUSTOMER);
    let ticket = a.ticket_of(&first.id).await;
    graph.fail_next_thread_control(503);
    let (status, _) = a.hubspot(close(&a, &ticket)).await;
    assert_eq!(status, StatusCode::OK);
    a.settle().await;
    assert_eq!(graph.thread_calls().len(), 1);
    assert_eq!(graph.thread_owner(PNID, CUSTOMER), Some(Owner::Idle));

    // The AI took the thread back without Baton hearing of it: Meta refuses the release.
    let second = of(other);
    let ticket = a.ticket_of(&second.id).await;
    graph.route_thread(PNID, other, Owner::Primary);
    let (status, _) = a.hubspot(close(&a, &ticket)).await;
    assert_eq!(status, StatusCode::OK);
    a.settle().await;
    assert_eq!(graph.thread_calls().len(), 1, "nothing more was released");
    let events = a.events(&second.id).await;
    let (_, trail) = events
        .iter()
        .find(|(e, _)| matches!(e.kind, TicketEventKind::Stage { .. }))
        .unwrap();
    assert_eq!(trail.status, TrailStatus::Parked);
    let error = trail.last_error.clone().unwrap();
    assert_eq!(error.step, "thread");
    assert!(
        error
            .message
            .contains("giving the WhatsApp thread back (release)")
            && error.message.contains("2494191")
            && error.message.contains("Conversation routing"),
        "{}",
        error.message
    );
    // The episode ended all the same.
    assert!(
        a.rig
            .store
            .open_episode(&ConversationKey::new(PNID, other))
            .await
            .unwrap()
            .is_none()
    );
}

/// Outside the window a multi-line answer goes out as the template's `reply` parameter, its
/// white space collapsed as Meta requires of template parameters (no new-lines, no tabs, at most
/// four spaces in a row): the test Graph server refuses any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_line_reply_reaches_the_customer_as_a_template_parameter() {
    let Some(mut a) = after_with(true, "customer_name,reply").await else {
        return;
    };
    let t = now_ms() / 1000 - 2 * 86_400;
    let (_, ticket) = a
        .handed_off("wamid.m1", t, "Can I speak to a person about my refund?")
        .await;
    a.rep_replies(
        &ticket,
        "Hello Maria,\n\nYour refund\twas approved.      It arrives in 3 days.\r\nThanks!",
        1,
    )
    .await;
    a.settle().await;
    let sent = a.rig.graph.sent();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    let params = &sent[0].1["template"]["components"][0]["parameters"];
    assert_eq!(
        params[1]["text"],
        "Hello Maria, Your refund was approved. It arrives in 3 days. Thanks!"
    );
}

/// Meta throttles every send of one reply: the reply is tried a bounded number of times, then
/// parked with the reason, and the replay after the throttle lifts sends it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_still_being_copied_at_the_handoff_follows_on_the_ticket_once_it_lands() {
    let settings = HandoffSettings {
        media_wait: Duration::from_millis(500),
        ..HandoffSettings::default()
    };
    let Some(rig) = handoff::rig_queued(settings, handoff::patient_graph).await else {
        return;
    };
    let Some(mut a) = after_on(rig, false, "", QUICK_RETRIES).await else {
        return;
    };
    let t = now_ms() / 1000 - 60;
    let video = handoff::pattern(300_000, 4);
    a.rig.graph.add(
        "media-long-video",
        video.clone(),
        "video/mp4",
        Fault::StallDownload(Duration::from_secs(2)),
    );
    let mut clip = handoff::message("video.json", "wamid.v1", t);
    handoff::media(&mut clip, "video", "media-long-video", &video, None);
    a.rig.deliver_twice(handoff::deliver(vec![clip])).await;
    let (h, ticket) = a
        .handed_off("wamid.v2", t + 5, "I want to talk to a human")
        .await;
    assert_eq!(h.media[0].state, MediaState::Pending);
    let notes = a.ticket_notes(&ticket);
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert!(
        notes[0]
            .contains("still being copied from WhatsApp: it follows on the ticket when it lands"),
        "{}",
        notes[0]
    );
    assert!(a.server.files().iter().all(|f| f.bytes != video));

    // The copy lands; the file follows on the ticket with its own note, once.
    a.copy_lands(&h.conversation, "wamid.v1").await;
    let notes = a.ticket_notes(&ticket);
    assert_eq!(notes.len(), 2, "{notes:#?}");
    let landed = notes
        .iter()
        .find(|n| n.contains("is now attached"))
        .expect("the file's note");
    assert!(landed.contains("Maria Lopez"), "{landed}");
    let uploaded: Vec<_> = a
        .server
        .files()
        .into_iter()
        .filter(|f| f.bytes == video)
        .collect();
    assert_eq!(uploaded.len(), 1, "the video is uploaded once");

    // A follow-up's file waits the same way: the follow-up note goes without it, and the file
    // follows with its own note once it lands.
    let photo = handoff::pattern(250_000, 6);
    a.rig.graph.add(
        "media-late-photo",
        photo.clone(),
        "image/jpeg",
        Fault::StallDownload(Duration::from_secs(2)),
    );
    let mut image = handoff::message("image.json", "wamid.v3", t + 30);
    handoff::media(&mut image, "image", "media-late-photo", &photo, None);
    a.rig.deliver_twice(handoff::deliver(vec![image])).await;
    a.settle().await;
    let notes = a.ticket_notes(&ticket);
    assert_eq!(notes.len(), 3, "{notes:#?}");
    let follow_up = notes
        .iter()
        .find(|n| n.contains("WhatsApp follow-up"))
        .expect("the follow-up's note");
    assert!(
        follow_up
            .contains("still being copied from WhatsApp: it follows on the ticket when it lands"),
        "{follow_up}"
    );
    a.copy_lands(&h.conversation, "wamid.v3").await;
    let notes = a.ticket_notes(&ticket);
    assert_eq!(notes.len(), 4, "{notes:#?}");
    assert_eq!(
        notes
            .iter()
            .filter(|n| n.contains("is now attached"))
            .count(),
        2,
        "{notes:#?}"
    );
    let uploaded = a
        .server
        .files()
        .into_iter()
        .filter(|f| f.bytes == photo)
        .count();
    assert_eq!(uploaded, 1, "the photo is uploaded once");
}

/// Meta throttles every send to one customer (130429); meanwhile another customer asks for a
/// person. The other handoff's ticket is made while the throttled reply is still being retried;
/// the reply parks after its bound; a replay sends it once. `-- --nocapture` prints the figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_throttled_for_one_customer_holds_up_no_other_handoff() {
    let rig = handoff::rig(HandoffSettings::default(), None).await;
    let Some(rig) = rig else {
        return;
    };
    // Baton's own pauses between runs, so the figures are the real ones.
    let Some(mut a) = after_on(rig, false, "", baton_hubspot::EVENT_RETRIES).await else {
        return;
    };
    let t = now_ms() / 1000 - 60;
    let (h, ticket) = a
        .handed_off("wamid.tf1", t, "I want to talk to a human")
        .await;
    for _ in 0..50 {
        a.rig.graph.fail_next_send(130_429);
    }
    a.rep_replies(&ticket, "We are on it.", 1).await;
    let neighbour = "16505559876";
    a.rig
        .deliver_twice(bodies::delivery(
            PNID,
            bodies::contact(neighbour, "Ana Ruiz"),
            json!([bodies::text(
                "wamid.tf2",
                neighbour,
                t + 30,
                "I want to talk to a human"
            )]),
            json!([]),
        ))
        .await;

    let started = std::time::Instant::now();
    let store = a.rig.store.clone();
    let handoff_id = h.id.clone();
    let reply_trail = || async {
        store
            .ticket_events(&handoff_id)
            .await
            .unwrap()
            .into_iter()
            .find(|(e, _)| matches!(e.kind, TicketEventKind::Reply { .. }))
            .map(|(_, trail)| trail)
    };
    // Watches HubSpot for the neighbour's ticket while the stages run.
    let server = a.server.clone();
    let watch = async {
        loop {
            if server.tickets().len() == 2 {
                let reply = reply_trail().await;
                return (started.elapsed(), reply);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (_, (neighbour_ticket_after, reply_then)) = tokio::join!(a.settle(), watch);
    let parked_after = started.elapsed();
    let reply_then = reply_then.expect("the reply event exists");
    assert_ne!(
        reply_then.status,
        TrailStatus::Parked,
        "the neighbour's ticket came while the reply was still being retried"
    );
    let reply = reply_trail().await.unwrap();
    assert_eq!(reply.status, TrailStatus::Parked, "{reply:#?}");
    assert_eq!(reply.runs, baton_hubspot::MAX_SEND_TRIES);
    let error = reply.last_error.clone().unwrap();
    assert!(
        error.message.contains("error 130429")
            && error
                .message
                .contains("refused 5 tries in a row, so the reply is parked"),
        "{}",
        error.message
    );
    assert!(a.rig.graph.sent().is_empty());
    println!(
        "throttled forever: {} tries, parked after {:.1} s; the other customer's ticket after {:.2} s",
        reply.runs,
        parked_after.as_secs_f64(),
        neighbour_ticket_after.as_secs_f64()
    );

    a.rig.graph.clear_send_faults();
    let report = a.hubspot_replay().await;
    assert_eq!(report.events_done, 1, "{report:?}");
    assert_eq!(a.rig.graph.sent().len(), 1);
}

/// The AI agent's webhook stays down: telling it a person took over is retried with pauses, a
/// bounded number of times, then parked with the reason; a replay tells it once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telling_an_agent_that_stays_down_ends_parked_and_a_replay_tells_it_once() {
    let Some(mut a) = after(false).await else {
        return;
    };
    let t = now_ms() / 1000 - 60;
    let (h, ticket) = a
        .handed_off("wamid.ad1", t, "I want to talk to a human")
        .await;
    a.inbox
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    a.rep_replies(&ticket, "On it.", 1).await;
    a.settle().await;
    assert_eq!(a.rig.graph.sent().len(), 1, "the reply itself went out");
    let events = a.events(&h.id).await;
    let (_, told_trail) = events
        .iter()
        .find(|(e, _)| matches!(e.kind, TicketEventKind::Ownership { .. }))
        .expect("the ownership event");
    assert_eq!(told_trail.status, TrailStatus::Parked, "{told_trail:#?}");
    assert_eq!(told_trail.runs, baton_hubspot::EVENT_RETRIES.attempts);
    let message = &told_trail.last_error.as_ref().unwrap().message;
    assert!(
        message.contains("503")
            && message.contains("still failing after 8 runs, so the event is parked"),
        "{message}"
    );
    assert!(told(&a.inbox).is_empty());

    a.inbox
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let report = a.hubspot_replay().await;
    assert_eq!(report.events_done, 1, "{report:?}");
    let told_now = told(&a.inbox);
    assert_eq!(told_now.len(), 1);
    assert_eq!(told_now[0]["owner"], "human");
}

//! The HubSpot stage against a HubSpot server that enforces the contract and injects faults: end
//! to end from signed webhooks (DynamoDB Local, its stream, s3s-fs), contact matching, concurrent
//! handoffs, crashes and lost answers between every pair of steps, rate limits, refusals parked
//! and replayed, and the outbox `baton-local` writes without a token.

use std::sync::Arc;
use std::time::Duration;

use baton_handoff::HandoffSettings;
use baton_hubspot::{Delivered, Deliverer, HubspotClient, HubspotConfig, HubspotError};
use baton_local::fs_objects::FsObjectStore;
use baton_local::redb_store::RedbStore;
use baton_local::stream::StreamReader;
use baton_shared::domain::*;
use baton_shared::objects::{ObjectMeta, ObjectStore};
use baton_shared::retry::Classify as _;
use baton_shared::store::{AfterStore, HandoffStore, TrailStore};
use baton_testkit::bodies;
use baton_testkit::fixtures::{copied_file, handoff_record};
use baton_testkit::hubspot::{Fault, HubspotServer, Options, TOKEN};
use bytes::Bytes;
use http::Method;
use serde_json::json;
use tokio::time::Instant;

use crate::handoff::{self, CUSTOMER, PNID, T0};
use crate::support::*;
use baton_testkit::graph::Fault as GraphFault;

const SESSION_SECRET: &str = "session-secret-for-tests";

fn config(server: &HubspotServer, extra: &[(&str, &str)]) -> HubspotConfig {
    let base = server.base_url();
    let mut vars: Vec<(&str, &str)> = vec![
        ("HUBSPOT_ACCESS_TOKEN", TOKEN),
        ("HUBSPOT_BASE_URL", base.as_str()),
        ("PUBLIC_BASE_URL", "https://baton.example.com"),
        ("SESSION_LINK_SECRET", SESSION_SECRET),
    ];
    vars.extend_from_slice(extra);
    let src = Vars(vars);
    let mut cfg = HubspotConfig::from_source(&src).unwrap();
    cfg.timeout = Duration::from_millis(500);
    cfg
}

struct Vars<'a>(Vec<(&'a str, &'a str)>);

impl baton_shared::config::Source for Vars<'_> {
    fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

fn client(cfg: &HubspotConfig) -> HubspotClient {
    let mut c = HubspotClient::http(
        &cfg.base_url,
        cfg.token.clone().unwrap(),
        cfg.limits,
        cfg.timeout,
    )
    .unwrap();
    c.backoff.first = Duration::from_millis(20);
    c.backoff.max = Duration::from_millis(200);
    // Past the longest hold the tests inject (Fault::DoLater).
    c.settle = Duration::from_millis(1500);
    c
}

fn deliverer(
    cfg: HubspotConfig,
    store: Arc<dyn AfterStore>,
    objects: Arc<dyn ObjectStore>,
) -> Deliverer {
    let c = client(&cfg);
    Deliverer::new(cfg, Some(c), store, objects)
}

/// A deliverer on the test server with `extra` settings, over the embedded store.
fn deliverer_on(
    server: &HubspotServer,
    store: &RedbStore,
    objects: &Arc<FsObjectStore>,
    extra: &[(&str, &str)],
) -> Deliverer {
    deliverer(
        config(server, extra),
        Arc::new(store.clone()),
        objects.clone(),
    )
}

fn soon(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

/// A handoff record as the handoff stage writes it, with its transcript and files stored.
async fn stored_handoff(
    store: &dyn HandoffStore,
    objects: &dyn ObjectStore,
    customer: Customer,
    n: u32,
    transcript: &str,
    files: &[(&str, &str, Vec<u8>)],
) -> HandoffRecord {
    let who = customer.user_id.clone().or(customer.wa_id.clone());
    let key = ConversationKey::new(PNID, who.unwrap_or_default());
    let id = HandoffRecord::id_for(&key, n);
    let transcript_key = format!("transcripts/{id}.txt");
    objects
        .put(
            &transcript_key,
            Bytes::from(transcript.to_owned()),
            &ObjectMeta::default(),
        )
        .await
        .unwrap();
    let mut media = Vec::new();
    for (i, (name, ct, bytes)) in files.iter().enumerate() {
        let k = format!("media/{id}/{i}/{name}");
        objects
            .put(&k, Bytes::from(bytes.clone()), &ObjectMeta::default())
            .await
            .unwrap();
        media.push(copied_file(
            &key,
            &format!("wamid.file{i}"),
            &k,
            name,
            ct,
            bytes.len() as u64,
        ));
    }
    let transcript = TranscriptRef {
        key: transcript_key,
        bytes: transcript.len() as u64,
        messages: 3,
        agent_events: 0,
        last_order_key: None,
    };
    let mut record = handoff_record(key, n, customer, transcript, media, T0);
    // Customer and agent text with markup in it, to be escaped.
    record.reason.text = "The customer asked for a person: \"<b>real person</b> please\"".into();
    record.insights.summary =
        "Order 48213 arrived broken & the customer wants a refund <now>.".into();
    assert!(store.save_handoff(&record).await.unwrap());
    record
}

fn customer(wa_id: &str, name: &str) -> Customer {
    Customer {
        wa_id: Some(wa_id.into()),
        profile_name: Some(name.into()),
        display_phone_number: "15550000000".into(),
        ..Default::default()
    }
}

fn local_stores() -> (RedbStore, Arc<FsObjectStore>) {
    let dir = std::env::temp_dir().join(unique("baton-hubspot"));
    (
        RedbStore::open(&dir).unwrap(),
        Arc::new(FsObjectStore::new(dir.join("objects"))),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_become_one_ticket_with_contact_files_and_note() {
    let Some(mut rig) = handoff::rig(HandoffSettings::default(), None).await else {
        return;
    };
    let server = HubspotServer::start(Options::default()).await;
    let photo = handoff::pattern(150_000, 1);
    let pdf = handoff::pattern(2 * 1024 * 1024 + 17, 3);
    rig.graph
        .add("media-photo", photo.clone(), "image/jpeg", GraphFault::None);
    rig.graph.add(
        "media-pdf",
        pdf.clone(),
        "application/pdf",
        GraphFault::None,
    );
    rig.deliver_twice(handoff::deliver(vec![bodies::text(
        "wamid.m1",
        CUSTOMER,
        T0,
        "Hi, my order 48213 arrived with a broken screen <script>alert(1)</script>",
    )]))
    .await;
    let mut image = handoff::message("image.json", "wamid.m2", T0 + 60);
    handoff::media(&mut image, "image", "media-photo", &photo, None);
    let mut doc = handoff::message("document.json", "wamid.m3", T0 + 70);
    handoff::media(&mut doc, "document", "media-pdf", &pdf, None);
    doc["document"]["filename"] = json!("Invoice 48213.pdf");
    rig.deliver_twice(handoff::deliver(vec![image, doc])).await;
    rig.deliver_twice(handoff::deliver(vec![bodies::text(
        "wamid.m4",
        CUSTOMER,
        T0 + 120,
        "This is useless. I want to talk to a human!!",
    )]))
    .await;
    rig.run_stream(true).await;
    let handoffs = rig.handoffs().await;
    assert_eq!(handoffs.len(), 1);
    let h = &handoffs[0];
    assert!(
        h.media.iter().all(|m| m.state == MediaState::Copied) && h.media.len() == 2,
        "{:?}",
        h.media
    );

    // The HubSpot stage reads the same stream, filtered as template.yaml filters it, and gets
    // every batch twice; HubSpot loses the answer to the ticket's create (after making it),
    // fails an upload and rate-limits the note.
    server.inject(
        Method::POST,
        "/crm/objects/2026-09/tickets",
        Fault::DoThenHang,
    );
    server.inject(Method::POST, "/files/2026-09/files", Fault::Status(500));
    server.inject(
        Method::POST,
        "/crm/objects/2026-09/notes",
        Fault::RateLimited(Some(1)),
    );
    let cfg = config(&server, &[]);
    let store = Arc::new(rig.store.clone());
    let deliverer = deliverer(cfg, store.clone(), Arc::new(rig.objects.clone()));
    let sdk = handoff::aws(&dynamodb_endpoint().unwrap());
    for pass in 0..2 {
        let mut reader = StreamReader::open(&sdk, rig.store.table(), None)
            .await
            .unwrap();
        let mut handed = 0;
        loop {
            let batches = reader.poll().await.unwrap();
            if batches.is_empty() {
                break;
            }
            for batch in batches {
                let mut event = aws_lambda_events::event::dynamodb::Event::default();
                event.records = batch
                    .records
                    .iter()
                    .filter(|r| baton_hubspot::passes_filter(r))
                    .cloned()
                    .collect();
                handed += event.records.len();
                for _ in 0..2 {
                    let response =
                        baton_hubspot::handle_batch(&deliverer, event.clone(), soon(20)).await;
                    assert!(response.batch_item_failures.is_empty());
                }
                reader.settle(&batch, None);
            }
        }
        assert_eq!(
            handed, 1,
            "pass {pass}: only the handoff's INSERT passes the filter"
        );
    }

    // One contact, created from the WhatsApp profile, with the unique WhatsApp id.
    let contacts = server.contacts();
    assert_eq!(contacts.len(), 1);
    let c = &contacts[0];
    assert_eq!(c.properties["baton_whatsapp_id"], "+16505551234");
    assert_eq!(c.properties["phone"], "+16505551234");
    assert_eq!(c.properties["firstname"], "Maria");
    assert_eq!(c.properties["lastname"], "Lopez");
    // Baton's properties were created once, the contact's unique.
    for p in [
        "baton_handoff_id",
        "baton_escalation_reason",
        "baton_sentiment",
        "baton_language",
        "baton_reply_window_closes_at",
        "baton_session_url",
    ] {
        assert!(
            server.property_names("tickets").contains(&p.to_owned()),
            "{p}"
        );
    }
    assert!(
        server
            .property_names("contacts")
            .contains(&"baton_whatsapp_id".to_owned())
    );

    // One ticket in the default pipeline's first open stage, associated with the contact.
    let tickets = server.tickets();
    assert_eq!(tickets.len(), 1, "never two tickets");
    let t = &tickets[0].properties;
    assert_eq!(t["hs_pipeline"], "0");
    assert_eq!(t["hs_pipeline_stage"], "1");
    assert_eq!(t["hs_ticket_priority"], "HIGH", "negative sentiment");
    assert_eq!(t["source_type"], "CHAT");
    assert_eq!(t["baton_handoff_id"], h.id);
    assert_eq!(t["baton_sentiment"], "negative");
    assert_eq!(t["baton_language"], "en");
    assert_eq!(
        t["baton_reply_window_closes_at"],
        ((T0 + 120 + 86_400) * 1000).to_string()
    );
    assert!(
        t["subject"].starts_with("WhatsApp: Maria Lopez — "),
        "{}",
        t["subject"]
    );
    assert!(t["content"].contains(&h.insights.summary));
    assert!(t["content"].contains("I want to talk to a human!!"));
    assert!(t["content"].contains("Invoice 48213.pdf"));
    let session = &t["baton_session_url"];
    assert!(
        session.starts_with(&format!("https://baton.example.com/sessions/{}?t=", h.id)),
        "{session}"
    );
    let token = session.split("?t=").nth(1).unwrap();
    let links = baton_shared::session::SessionLinks::new(
        "https://baton.example.com",
        SESSION_SECRET.to_owned().into(),
        30,
    );
    assert!(links.verify(&h.id, token, T0 + 200));
    assert_eq!(
        server.associated("tickets", &tickets[0].id, "contacts"),
        [(c.id.clone(), 16)]
    );

    // Both files, byte for byte, private, in the handoff's folder.
    let files = server.files();
    assert_eq!(
        files.len(),
        2,
        "{:?}",
        files
            .iter()
            .map(|f| (&f.name, f.bytes.len()))
            .collect::<Vec<_>>()
    );
    let folder = format!("/baton/{}", h.id);
    for (f, bytes) in files.iter().zip([&photo, &pdf]) {
        assert_eq!(&f.bytes, bytes);
        assert_eq!(f.access, "PRIVATE");
        assert_eq!(f.folder, folder);
    }
    assert!(
        files[1].name.ends_with("-Invoice_48213.pdf"),
        "{}",
        files[1].name
    );
    assert_eq!(files[1].content_type, "application/pdf");

    // One note on the ticket and the contact, with everything the rep needs.
    let notes = server.notes();
    assert_eq!(notes.len(), 1);
    let n = &notes[0].properties;
    assert_eq!(
        n["hs_attachment_ids"],
        format!("{};{}", files[0].id, files[1].id)
    );
    let body = &n["hs_note_body"];
    for want in [
        "Escalation reason</strong> (customer_request)",
        "I want to talk to a human!!",
        "Sentiment</strong>: negative",
        "Language</strong>: en",
        "2025-11-25",
        &format!("href=\"https://baton.example.com/sessions/{}?t=", h.id),
        "Invoice 48213.pdf",
    ] {
        assert!(body.contains(want), "{want:?} missing from {body}");
    }
    assert!(
        !body.contains("<script>"),
        "customer text is escaped: {body}"
    );
    assert_eq!(
        server.associated("notes", &notes[0].id, "tickets"),
        [(tickets[0].id.clone(), 228)]
    );
    assert_eq!(
        server.associated("notes", &notes[0].id, "contacts"),
        [(c.id.clone(), 202)]
    );

    // The trail on the handoff record says where everything is.
    let trail = store.trail(&h.id).await.unwrap().unwrap();
    assert_eq!(trail.status, TrailStatus::Done);
    assert_eq!(trail.contact.id.as_deref(), Some(c.id.as_str()));
    assert_eq!(trail.contact.how.as_deref(), Some("created"));
    assert_eq!(trail.ticket.id.as_deref(), Some(tickets[0].id.as_str()));
    assert_eq!(trail.ticket.how.as_deref(), Some("found_after_timeout"));
    assert_eq!(trail.note.id.as_deref(), Some(notes[0].id.as_str()));
    assert_eq!(trail.file_ids(), [files[0].id.clone(), files[1].id.clone()]);
    assert_eq!(
        trail.runs, 1,
        "redeliveries of a delivered handoff do nothing"
    );
}

#[tokio::test]
async fn an_existing_contact_is_matched_by_phone_in_any_format_but_never_across_countries() {
    let server = HubspotServer::start(Options::default()).await;
    // Entered by people: an older contact in the UK with the same national digits, and the
    // customer typed in national format.
    let foreign = server.add_contact(&[("firstname", "Other"), ("phone", "+44 650 555 1234")]);
    let mine = server.add_contact(&[("firstname", "Maria"), ("mobilephone", "(650) 555-1234")]);
    let (store, objects) = local_stores();
    let d = deliverer_on(&server, &store, &objects, &[]);
    let first = stored_handoff(&store, &*objects, customer(CUSTOMER, "Maria"), 1, "t", &[]).await;
    let Delivered::Done(trail) = d.deliver(&first, soon(20)).await.unwrap() else {
        panic!("parked")
    };
    assert_eq!(trail.contact.id.as_deref(), Some(mine.as_str()));
    assert_eq!(trail.contact.how.as_deref(), Some("found_by_search"));
    assert_ne!(mine, foreign);
    assert_eq!(server.contacts().len(), 2, "no contact created");
    let c = server
        .contacts()
        .into_iter()
        .find(|c| c.id == mine)
        .unwrap();
    assert_eq!(
        c.properties["baton_whatsapp_id"], "+16505551234",
        "remembered for a direct read next time"
    );

    // The next handoff reads the contact directly: no search.
    let searches_before = count(&server, "/crm/objects/2026-09/contacts/search");
    let second = stored_handoff(&store, &*objects, customer(CUSTOMER, "Maria"), 2, "t", &[]).await;
    let Delivered::Done(trail) = d.deliver(&second, soon(20)).await.unwrap() else {
        panic!("parked")
    };
    assert_eq!(trail.contact.how.as_deref(), Some("found_by_whatsapp_id"));
    assert_eq!(
        count(&server, "/crm/objects/2026-09/contacts/search"),
        searches_before
    );
    assert_eq!(server.tickets().len(), 2);

    // A customer with no match anywhere gets a new contact; the foreign number is not theirs.
    let third = stored_handoff(
        &store,
        &*objects,
        customer("447700900123", "Sam"),
        1,
        "t",
        &[],
    )
    .await;
    let Delivered::Done(trail) = d.deliver(&third, soon(20)).await.unwrap() else {
        panic!("parked")
    };
    assert_eq!(trail.contact.how.as_deref(), Some("created"));
    assert_eq!(server.contacts().len(), 3);

    // A customer with a WhatsApp username and no phone is keyed on the user id: no search.
    let searches_before = count(&server, "/crm/objects/2026-09/contacts/search");
    let bsuid = Customer {
        user_id: Some("US.13491208655302741918".into()),
        username: Some("maria_l".into()),
        display_phone_number: "15550000000".into(),
        ..Default::default()
    };
    let fourth = stored_handoff(&store, &*objects, bsuid, 1, "t", &[]).await;
    let Delivered::Done(trail) = d.deliver(&fourth, soon(20)).await.unwrap() else {
        panic!("parked")
    };
    assert_eq!(trail.contact.how.as_deref(), Some("created"));
    let c = server
        .contacts()
        .into_iter()
        .find(|c| Some(&c.id) == trail.contact.id.as_ref())
        .unwrap();
    assert_eq!(c.properties["baton_whatsapp_id"], "US.13491208655302741918");
    assert_eq!(c.properties["firstname"], "maria_l");
    assert!(!c.properties.contains_key("phone"));
    assert_eq!(
        count(&server, "/crm/objects/2026-09/contacts/search"),
        searches_before
    );
}

#[tokio::test]
async fn the_priority_follows_the_configured_map_and_only_the_portals_options() {
    let server = HubspotServer::start(Options::default()).await;
    let (store, objects) = local_stores();
    let mut priorities = Vec::new();
    for (n, map) in [
        (1, r#"{"negative":"URGENT"}"#),
        (2, r#"{"negative":"CRITICAL"}"#),
    ] {
        let d = deliverer_on(&server, &store, &objects, &[("HUBSPOT_PRIORITY_MAP", map)]);
        let record =
            stored_handoff(&store, &*objects, customer(CUSTOMER, "Maria"), n, "t", &[]).await;
        let Delivered::Done(trail) = d.deliver(&record, soon(20)).await.unwrap() else {
            panic!("parked")
        };
        let ticket = server
            .tickets()
            .into_iter()
            .find(|t| Some(&t.id) == trail.ticket.id.as_ref())
            .unwrap();
        priorities.push(ticket.properties.get("hs_ticket_priority").cloned());
    }
    // A value the portal does not offer is left out rather than failing the ticket.
    assert_eq!(priorities, [Some("URGENT".to_owned()), None]);
}

fn count(server: &HubspotServer, path: &str) -> usize {
    server.requests().iter().filter(|(_, p)| p == path).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handoffs_of_a_new_customer_at_the_same_moment_make_one_contact() {
    let server = HubspotServer::start(Options::default()).await;
    let (store, objects) = local_stores();
    // Two business numbers, one customer: two conversations, two handoffs at once. Search lag
    // hides each one's new contact from the other.
    let a = stored_handoff(
        &store,
        &*objects,
        customer("34612345678", "Ana"),
        1,
        "a",
        &[],
    )
    .await;
    let mut b_customer = customer("34612345678", "Ana");
    b_customer.display_phone_number = "15550000001".into();
    let b = {
        let mut r = stored_handoff(&store, &*objects, b_customer, 2, "b", &[]).await;
        r.conversation = ConversationKey::new("other-business", "34612345678");
        r
    };
    let cfg = config(&server, &[]);
    let d1 = deliverer(cfg.clone(), Arc::new(store.clone()), objects.clone());
    let d2 = deliverer(cfg, Arc::new(store.clone()), objects.clone());
    let (r1, r2) = tokio::join!(d1.deliver(&a, soon(20)), d2.deliver(&b, soon(20)));
    let (Delivered::Done(t1), Delivered::Done(t2)) = (r1.unwrap(), r2.unwrap()) else {
        panic!("parked")
    };
    assert_eq!(server.contacts().len(), 1, "one contact for one customer");
    assert_eq!(t1.contact.id, t2.contact.id);
    let hows = [t1.contact.how.unwrap(), t2.contact.how.unwrap()];
    assert!(hows.contains(&"created".to_owned()), "{hows:?}");
    assert_eq!(server.tickets().len(), 2, "one ticket per handoff");
}

/// One handoff with two files and a transcript longer than a ticket holds.
async fn full_handoff(store: &dyn HandoffStore, objects: &dyn ObjectStore) -> HandoffRecord {
    let mut transcript = String::from("WhatsApp conversation\n");
    let mut i = 0;
    while transcript.len() < 80_000 {
        transcript.push_str(&format!(
            "[2025-11-24 10:{:02}:00 UTC] Customer (Ana): message {i} — ñ ü 😀\n",
            i % 60
        ));
        i += 1;
    }
    stored_handoff(
        store,
        objects,
        customer("34612345678", "Ana Ruiz"),
        1,
        &transcript,
        &[
            ("photo.jpg", "image/jpeg", handoff::pattern(70_000, 5)),
            (
                "Receipt #2.pdf",
                "application/pdf",
                handoff::pattern(300_000, 6),
            ),
        ],
    )
    .await
}

fn assert_exactly_once(server: &HubspotServer, record: &HandoffRecord, context: &str) {
    assert_eq!(server.contacts().len(), 1, "{context}: contacts");
    assert_eq!(server.tickets().len(), 1, "{context}: tickets");
    assert_eq!(server.notes().len(), 1, "{context}: notes");
    let files = server.files();
    assert_eq!(
        files.len(),
        3,
        "{context}: two media files and the transcript, once each"
    );
    let note = &server.notes()[0].properties;
    let ids: Vec<&str> = note["hs_attachment_ids"].split(';').collect();
    assert_eq!(ids.len(), 3, "{context}");
    for f in &files {
        assert!(
            ids.contains(&f.id.as_str()),
            "{context}: {} not attached",
            f.name
        );
    }
    let ticket = &server.tickets()[0].properties;
    assert_eq!(ticket["baton_handoff_id"], record.id);
    assert_eq!(
        server
            .associated("tickets", &server.tickets()[0].id, "contacts")
            .len(),
        1,
        "{context}: ticket linked to the contact"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transcript_is_cut_at_the_limit_with_a_marker_and_attached_whole() {
    let server = HubspotServer::start(Options::default()).await;
    let (store, objects) = local_stores();
    let record = full_handoff(&store, &*objects).await;
    let d = deliverer_on(&server, &store, &objects, &[]);
    assert!(matches!(
        d.deliver(&record, soon(20)).await.unwrap(),
        Delivered::Done(_)
    ));
    assert_exactly_once(&server, &record, "clean run");
    let content = &server.tickets()[0].properties["content"];
    assert!(content.encode_utf16().count() <= 65_536);
    assert!(
        content.encode_utf16().count() > 60_000,
        "cut near the limit, not far before"
    );
    assert!(content.contains("transcript cut here"), "marker");
    assert!(content.contains(&format!("transcript-{}.txt", record.id)));
    let whole = objects.get(&record.transcript.key).await.unwrap().unwrap();
    let attached = server
        .files()
        .into_iter()
        .find(|f| f.name == format!("transcript-{}.txt", record.id))
        .expect("the transcript is attached");
    assert_eq!(attached.bytes, whole.to_vec(), "attached whole");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_and_lost_answers_between_any_two_steps_never_make_a_duplicate_or_lose_one() {
    // A clean run counts the requests a handoff takes.
    let clean = HubspotServer::start(Options::default()).await;
    let (store, objects) = local_stores();
    let record = full_handoff(&store, &*objects).await;
    let d = deliverer_on(&clean, &store, &objects, &[]);
    d.deliver(&record, soon(20)).await.unwrap();
    let total = clean.requests().len();
    assert!(
        total >= 15,
        "set-up, contact, ticket, 3 files, note: {total}"
    );

    let mut cases = 0;
    for n in 1..=total {
        for fault in [
            Fault::DoThenHang,
            Fault::Hang,
            Fault::DoThenFail,
            Fault::Status(503),
            // HubSpot carries the request out a second after its caller gave up on it.
            Fault::DoLater(Duration::from_secs(1)),
        ] {
            let server = HubspotServer::start(Options::default()).await;
            let (store, objects) = local_stores();
            let record = full_handoff(&store, &*objects).await;
            server.inject_at(n, fault.clone());
            let context = format!("request {n} {fault:?}");
            // The first container may crash (the run is dropped mid-request) or fail; the next
            // one (a new client, nothing cached) must finish the job.
            let first = deliverer_on(&server, &store, &objects, &[]);
            let _ =
                tokio::time::timeout(Duration::from_millis(900), first.deliver(&record, soon(20)))
                    .await;
            drop(first);
            let mut done = false;
            for _ in 0..3 {
                let next = deliverer_on(&server, &store, &objects, &[]);
                if let Ok(Delivered::Done(_)) = next.deliver(&record, soon(20)).await {
                    done = true;
                    break;
                }
            }
            assert!(done, "{context}: never delivered");
            if matches!(fault, Fault::DoLater(_)) {
                // Whatever HubSpot still held has landed by now.
                tokio::time::sleep(Duration::from_millis(1200)).await;
            }
            assert_exactly_once(&server, &record, &context);
            assert_eq!(
                store.trail(&record.id).await.unwrap().unwrap().status,
                TrailStatus::Done,
                "{context}"
            );
            cases += 1;
        }
    }
    assert_eq!(cases, total * 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_server_errors_are_retried_with_the_wait_hubspot_asks_for() {
    let server = HubspotServer::start(Options::default()).await;
    let (store, objects) = local_stores();
    let record = stored_handoff(&store, &*objects, customer(CUSTOMER, "Maria"), 1, "t", &[]).await;
    server.inject(
        Method::GET,
        "/crm/pipelines/2026-09",
        Fault::RateLimited(Some(1)),
    );
    server.inject(
        Method::POST,
        "/crm/objects/2026-09/contacts/search",
        Fault::RateLimited(None),
    );
    server.inject(
        Method::POST,
        "/crm/objects/2026-09/contacts/search",
        Fault::Status(500),
    );
    server.inject(
        Method::POST,
        "/crm/objects/2026-09/tickets",
        Fault::Status(503),
    );
    server.inject(Method::GET, "/crm/objects/2026-09/tickets/", Fault::Hang);
    server.inject(
        Method::POST,
        "/crm/objects/2026-09/notes",
        Fault::RateLimited(None),
    );
    let d = deliverer_on(&server, &store, &objects, &[]);
    let started = std::time::Instant::now();
    let Delivered::Done(trail) = d.deliver(&record, soon(60)).await.unwrap() else {
        panic!("parked")
    };
    let took = started.elapsed();
    // Retry-After: 1 s; search's window: 1 s; the general window without Retry-After: 10 s.
    assert!(took >= Duration::from_secs(12), "{took:?}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert_eq!(server.tickets().len(), 1);
    assert_eq!(server.notes().len(), 1);
    // The 503 on the create left its outcome unknown: looked up (through a hang), then created.
    assert_eq!(trail.ticket.how.as_deref(), Some("created"));
    let counters = &d.client().unwrap().counters;
    assert_eq!(
        counters
            .rate_limited
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    assert!(counters.retries.load(std::sync::atomic::Ordering::Relaxed) >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_handoffs_at_once_stay_inside_search_rate_limit() {
    let server = HubspotServer::start(Options {
        search_lag: Duration::ZERO,
        ..Options::default()
    })
    .await;
    let (store, objects) = local_stores();
    let d = Arc::new(deliverer_on(&server, &store, &objects, &[]));
    let mut records = Vec::new();
    for i in 0..12 {
        records.push(
            stored_handoff(
                &store,
                &*objects,
                customer(&format!("3461234{i:04}"), "Cliente"),
                1,
                "t",
                &[],
            )
            .await,
        );
    }
    let runs = records.iter().map(|r| {
        let d = d.clone();
        async move { d.deliver(r, soon(30)).await }
    });
    for r in futures_util::future::join_all(runs).await {
        assert!(matches!(r.unwrap(), Delivered::Done(_)));
    }
    assert_eq!(count(&server, "/crm/objects/2026-09/contacts/search"), 12);
    assert_eq!(
        server.throttled(),
        0,
        "the client-side limiter kept search under 5/s"
    );
    assert_eq!(server.tickets().len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_parked_with_hubspots_reason_and_a_replay_finishes_them() {
    let server = HubspotServer::start(Options::default()).await;
    let (store, objects) = local_stores();
    let record = full_handoff(&store, &*objects).await;
    server.inject(
        Method::POST,
        "/crm/objects/2026-09/tickets",
        Fault::Status(400),
    );
    let d = deliverer_on(&server, &store, &objects, &[]);
    let Delivered::Parked(trail) = d.deliver(&record, soon(20)).await.unwrap() else {
        panic!("a validation error is parked, not retried")
    };
    assert_eq!(trail.status, TrailStatus::Parked);
    let e = trail.last_error.as_ref().unwrap();
    assert_eq!(
        (e.step.as_str(), e.status, e.retryable),
        ("ticket", Some(400), false)
    );
    assert!(
        e.message.contains("Property values were not valid"),
        "{}",
        e.message
    );
    assert_eq!(e.correlation_id.as_deref(), Some("0000-validation"));
    assert!(trail.contact.is_finished() && !trail.ticket.is_finished());
    assert_eq!(
        store.unfinished_handoffs(10).await.unwrap(),
        vec![record.id.clone()]
    );

    // A missing scope is a configuration error naming it.
    server.remove_scope("files");
    let Delivered::Parked(trail) = d.deliver(&record, soon(20)).await.unwrap() else {
        panic!("parked")
    };
    let e = trail.last_error.as_ref().unwrap();
    assert_eq!((e.step.as_str(), e.status), ("files", Some(403)));
    assert!(
        e.message.contains("needs the `files` scope"),
        "{}",
        e.message
    );
    assert_eq!(
        server.tickets().len(),
        1,
        "the ticket step finished meanwhile"
    );

    // Fixed in HubSpot: the replay resumes at the files.
    server.restore_scopes();
    let report = baton_hubspot::replay::replay(&d, &store, &store, soon(20)).await;
    assert_eq!(
        (report.done, report.parked, report.failed),
        (1, 0, 0),
        "{report:?}"
    );
    assert_exactly_once(&server, &record, "after the replay");
    let trail = store.trail(&record.id).await.unwrap().unwrap();
    assert_eq!((trail.status, trail.runs), (TrailStatus::Done, 3));
    assert!(store.unfinished_handoffs(10).await.unwrap().is_empty());
}

/// A full handoff (new contact, files, a long transcript) and a second customer's plain one.
struct Two {
    server: HubspotServer,
    store: RedbStore,
    objects: Arc<FsObjectStore>,
    first: HandoffRecord,
    second: HandoffRecord,
}

async fn two_handoffs() -> Two {
    let server = HubspotServer::start(Options::default()).await;
    let (store, objects) = local_stores();
    let first = full_handoff(&store, &*objects).await;
    let second = stored_handoff(
        &store,
        &*objects,
        customer("447700900123", "Ann"),
        1,
        "t",
        &[],
    )
    .await;
    Two {
        server,
        store,
        objects,
        first,
        second,
    }
}

#[tokio::test]
async fn a_file_hubspot_refuses_or_whose_copy_is_gone_is_skipped_and_the_note_says_why() {
    let server = HubspotServer::start(Options::default()).await;
    let (store, objects) = local_stores();
    let mut record = full_handoff(&store, &*objects).await;
    // The photo is refused; the receipt's copy has left the bucket.
    server.inject(Method::POST, "/files/2026-09/files", Fault::Status(400));
    record.media[1].key = Some("media/gone/receipt.pdf".into());
    let d = deliverer_on(&server, &store, &objects, &[]);
    let Delivered::Done(trail) = d.deliver(&record, soon(20)).await.unwrap() else {
        panic!("one file must not park the handoff")
    };
    let photo = trail.file("wamid.file0").unwrap();
    assert_eq!(photo.state, StepState::Skipped);
    assert!(
        photo.how.as_deref().unwrap().contains("injected refusal"),
        "{photo:?}"
    );
    let receipt = trail.file("wamid.file1").unwrap();
    assert_eq!(receipt.state, StepState::Skipped);
    assert!(
        receipt.how.as_deref().unwrap().contains("is gone"),
        "{receipt:?}"
    );
    // The transcript went up; the note carries it alone and names the other two.
    assert_eq!(server.files().len(), 1);
    assert_eq!(server.notes().len(), 1);
    let note = &server.notes()[0].properties;
    assert_eq!(note["hs_attachment_ids"], server.files()[0].id);
    let body = &note["hs_note_body"];
    assert!(
        body.contains("<strong>Files not attached</strong>"),
        "{body}"
    );
    assert!(
        body.contains("photo.jpg: not attached: files: HubSpot refused the request (400)"),
        "{body}"
    );
    assert!(
        body.contains("Receipt #2.pdf: not attached: media bucket: the copy"),
        "{body}"
    );
    assert!(body.contains(&format!(
        "<strong>Attached</strong>: transcript-{}.txt",
        record.id
    )));

    // A replay changes nothing.
    let Delivered::Done(_) = d.deliver(&record, soon(20)).await.unwrap() else {
        panic!("done")
    };
    assert_eq!((server.files().len(), server.notes().len()), (1, 1));
}

#[tokio::test]
async fn a_used_up_daily_limit_parks_handoffs_without_calling_again_and_a_replay_finishes_them() {
    let Two {
        server,
        store,
        objects,
        first,
        second,
    } = two_handoffs().await;
    server.inject(
        Method::POST,
        "/crm/objects/2026-09/tickets",
        Fault::DailyLimit,
    );
    let d = deliverer_on(&server, &store, &objects, &[]);
    let Delivered::Parked(trail) = d.deliver(&first, soon(20)).await.unwrap() else {
        panic!("nothing succeeds before the daily reset: parked, not retried")
    };
    let e = trail.last_error.as_ref().unwrap();
    assert_eq!(
        (e.step.as_str(), e.status, e.retryable),
        ("ticket", Some(429), false)
    );
    assert!(e.message.contains("daily API limit"), "{}", e.message);
    assert!(e.message.contains("hubspot-replay"), "{}", e.message);
    assert_eq!(e.correlation_id.as_deref(), Some("0000-daily"));
    assert_eq!(
        d.client()
            .unwrap()
            .counters
            .retries
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );

    // The same container parks the next handoff without spending a request.
    let sent = server.requests().len();
    let Delivered::Parked(trail) = d.deliver(&second, soon(20)).await.unwrap() else {
        panic!("parked")
    };
    assert_eq!(server.requests().len(), sent, "no request sent");
    let e = trail.last_error.as_ref().unwrap();
    assert_eq!((e.step.as_str(), e.status), ("contact", Some(429)));
    assert!(e.message.contains("daily API limit"), "{}", e.message);
    // Search counts against the daily limit too.
    let search = baton_hubspot::transport::Call::post(
        "contact",
        "/crm/objects/2026-09/contacts/search",
        json!({"filterGroups": []}),
    )
    .search();
    let refused = d.client().unwrap().results(&search, soon(5)).await;
    assert!(
        matches!(refused, Err(HubspotError::DailyLimit { .. })),
        "{refused:?}"
    );
    assert_eq!(server.requests().len(), sent, "no request sent");
    assert_eq!(store.unfinished_handoffs(10).await.unwrap().len(), 2);

    // After the reset a replay (a new process) finishes both, the first from its ticket on.
    let next = deliverer_on(&server, &store, &objects, &[]);
    let report = baton_hubspot::replay::replay(&next, &store, &store, soon(20)).await;
    assert_eq!(
        (report.done, report.parked, report.failed),
        (2, 0, 0),
        "{report:?}"
    );
    // One of each per handoff, the first's three files once each.
    assert_eq!(
        (
            server.contacts().len(),
            server.tickets().len(),
            server.notes().len(),
            server.files().len()
        ),
        (2, 2, 2, 3)
    );
    let mut ids: Vec<String> = server
        .tickets()
        .iter()
        .map(|t| t.properties["baton_handoff_id"].clone())
        .collect();
    ids.sort();
    let mut want = vec![first.id.clone(), second.id.clone()];
    want.sort();
    assert_eq!(ids, want);
    assert!(store.unfinished_handoffs(10).await.unwrap().is_empty());
    // Set-up is idempotent: the first process created Baton's eight properties, the second
    // found them and created none.
    let created = server
        .requests()
        .iter()
        .filter(|(m, p)| *m == Method::POST && p.starts_with("/crm/properties/2026-09/"))
        .count();
    assert_eq!(created, 8);
}

#[tokio::test]
async fn a_rate_limit_pause_past_the_deadline_ends_the_run_instead_of_outlasting_it() {
    let Two {
        server,
        store,
        objects,
        first,
        second,
    } = two_handoffs().await;
    server.inject(
        Method::POST,
        "/crm/objects/2026-09/tickets",
        Fault::RateLimited(Some(60)),
    );
    let d = deliverer_on(&server, &store, &objects, &[]);
    let Err(e) = d.deliver(&first, soon(5)).await else {
        panic!("a 60 s Retry-After does not fit a 5 s run: retried later")
    };
    assert!(e.is_retryable(), "{e}");
    // The next run in this container must not sleep out the pause past its own deadline.
    let sent = server.requests().len();
    let run = tokio::time::timeout(Duration::from_secs(10), d.deliver(&second, soon(5))).await;
    let Ok(Err(e)) = run else {
        panic!("the run outlasted its deadline or was not refused: {run:?}")
    };
    assert!(e.is_retryable(), "{e}");
    assert!(e.to_string().contains("after this run's deadline"), "{e}");
    assert_eq!(server.requests().len(), sent, "no request sent");
    let trail = store.trail(&second.id).await.unwrap().unwrap();
    assert_eq!(trail.status, TrailStatus::Retrying);
}

#[tokio::test]
async fn a_replay_delivers_the_oldest_handoff_first() {
    let server = HubspotServer::start(Options::default()).await;
    let (store, objects) = local_stores();
    let keys = [
        ConversationKey::new(PNID, "447700900001"),
        ConversationKey::new(PNID, "447700900002"),
    ];
    // The embedded store lists trails by id: the older handoff gets the greater id, so only
    // sorting puts it first.
    let (older, newer) = if HandoffRecord::id_for(&keys[0], 1) > HandoffRecord::id_for(&keys[1], 1)
    {
        (&keys[0], &keys[1])
    } else {
        (&keys[1], &keys[0])
    };
    let mut ids = Vec::new();
    for (key, at) in [(older, T0), (newer, T0 + 600)] {
        let transcript = TranscriptRef {
            key: format!("transcripts/{}.txt", HandoffRecord::id_for(key, 1)),
            bytes: 0,
            messages: 0,
            agent_events: 0,
            last_order_key: None,
        };
        let record = handoff_record(
            key.clone(),
            1,
            customer(&key.customer, "Ann"),
            transcript,
            Vec::new(),
            at,
        );
        assert!(store.save_handoff(&record).await.unwrap());
        let parked = HubspotTrail {
            status: TrailStatus::Parked,
            ..Default::default()
        };
        store.save_trail(&record.id, &parked).await.unwrap();
        ids.push(record.id);
    }
    let listed = store.unfinished_handoffs(10).await.unwrap();
    assert_eq!(
        listed,
        [ids[1].clone(), ids[0].clone()],
        "the store lists the newer first"
    );

    let d = deliverer_on(&server, &store, &objects, &[]);
    let report = baton_hubspot::replay::replay(&d, &store, &store, soon(20)).await;
    let order: Vec<&str> = report.handoffs.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(order, [ids[0].as_str(), ids[1].as_str()], "{report:?}");
    let tickets: Vec<String> = server
        .tickets()
        .iter()
        .map(|t| t.properties["baton_handoff_id"].clone())
        .collect();
    assert_eq!(tickets, ids, "the older handoff's ticket comes first");
}

#[tokio::test]
async fn a_refused_token_is_parked_as_a_configuration_error_naming_the_setting() {
    let server = HubspotServer::start(Options::default()).await;
    let (store, objects) = local_stores();
    let record = stored_handoff(&store, &*objects, customer(CUSTOMER, "Maria"), 1, "t", &[]).await;
    let d = deliverer_on(
        &server,
        &store,
        &objects,
        &[("HUBSPOT_ACCESS_TOKEN", "pat-na1-revoked-token")],
    );
    let Delivered::Parked(trail) = d.deliver(&record, soon(20)).await.unwrap() else {
        panic!("a refused token is parked, not retried")
    };
    let e = trail.last_error.unwrap();
    assert_eq!((e.status, e.retryable), (Some(401), false));
    assert!(
        e.message
            .contains("configuration error (401): HubSpot refused HUBSPOT_ACCESS_TOKEN"),
        "{}",
        e.message
    );
    assert!(!e.message.contains("scope"), "{}", e.message);
    assert!(
        !e.message.contains("revoked-token"),
        "the token is not quoted"
    );
    assert_eq!(server.requests().len(), 1, "nothing retried");
    assert!(server.tickets().is_empty());
}

#[tokio::test]
async fn a_bad_pipeline_setting_is_parked_naming_the_variable() {
    let server = HubspotServer::start(Options::default()).await;
    let (store, objects) = local_stores();
    let record = stored_handoff(&store, &*objects, customer(CUSTOMER, "Maria"), 1, "t", &[]).await;
    let d = deliverer_on(
        &server,
        &store,
        &objects,
        &[
            ("HUBSPOT_TICKET_PIPELINE", "9170"),
            ("HUBSPOT_TICKET_STAGE", "999"),
        ],
    );
    let Delivered::Parked(trail) = d.deliver(&record, soon(20)).await.unwrap() else {
        panic!("parked")
    };
    let message = &trail.last_error.unwrap().message;
    assert!(
        message.contains(
            "HUBSPOT_TICKET_STAGE \"999\" is not a stage of pipeline 9170 (ids: 9171, 9172)"
        ),
        "{message}"
    );
    // The configured pipeline and stage are used when they exist.
    let d = deliverer_on(
        &server,
        &store,
        &objects,
        &[
            ("HUBSPOT_TICKET_PIPELINE", "9170"),
            ("HUBSPOT_TICKET_STAGE", "9171"),
        ],
    );
    assert!(matches!(
        d.deliver(&record, soon(20)).await.unwrap(),
        Delivered::Done(_)
    ));
    let t = &server.tickets()[0].properties;
    assert_eq!(
        (t["hs_pipeline"].as_str(), t["hs_pipeline_stage"].as_str()),
        ("9170", "9171")
    );
    // Without a token nothing is sent and the handoff waits for one.
    let none = Deliverer::new(
        config(&server, &[]),
        None,
        Arc::new(store.clone()),
        objects.clone(),
    );
    let other = stored_handoff(&store, &*objects, customer(CUSTOMER, "Maria"), 2, "t", &[]).await;
    let Delivered::Parked(trail) = none.deliver(&other, soon(5)).await.unwrap() else {
        panic!("parked")
    };
    assert!(
        trail
            .last_error
            .unwrap()
            .message
            .contains("HUBSPOT_ACCESS_TOKEN is not set")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_hubspot_may_recover_from_is_reported_to_the_stream_for_a_retry() {
    let Some((store, _)) = dynamodb_store().await else {
        return;
    };
    let Some(objects) = s3_store().await else {
        return;
    };
    let server = HubspotServer::start(Options::default()).await;
    for _ in 0..20 {
        server.inject(
            Method::POST,
            "/crm/objects/2026-09/tickets",
            Fault::Status(503),
        );
    }
    // The handoff record goes into DynamoDB; its stream record is what Lambda hands over.
    let record = stored_handoff(&store, &objects, customer(CUSTOMER, "Maria"), 1, "t", &[]).await;
    let sdk = handoff::aws(&dynamodb_endpoint().unwrap());
    let mut reader = StreamReader::open(&sdk, store.table(), None).await.unwrap();
    let batch = reader.poll().await.unwrap().remove(0);
    let mut event = aws_lambda_events::event::dynamodb::Event::default();
    event.records = batch.records.clone();
    let d = deliverer(
        config(&server, &[]),
        Arc::new(store.clone()),
        Arc::new(objects),
    );
    let response = baton_hubspot::handle_batch(&d, event, soon(3)).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(
        response.batch_item_failures[0].item_identifier,
        batch.records[0].change.sequence_number
    );
    let trail = store.trail(&record.id).await.unwrap().unwrap();
    assert_eq!(trail.status, TrailStatus::Retrying);
    let e = trail.last_error.unwrap();
    assert!(e.retryable && e.step == "ticket", "{e:?}");
    assert!(server.tickets().is_empty());
    assert_eq!(store.unfinished_handoffs(10).await.unwrap(), [record.id]);
}

#[tokio::test]
async fn without_a_token_baton_local_writes_the_exact_requests_to_its_outbox() {
    let (store, objects) = local_stores();
    let dir = std::env::temp_dir().join(unique("baton-outbox"));
    let record = stored_handoff(
        &store,
        &*objects,
        customer(CUSTOMER, "Maria"),
        1,
        "transcript",
        &[("a.pdf", "application/pdf", vec![1, 2, 3])],
    )
    .await;
    let cfg = HubspotConfig::from_source(&[
        ("PUBLIC_BASE_URL", "http://127.0.0.1:3000"),
        ("SESSION_LINK_SECRET", "x"),
    ])
    .unwrap();
    let outbox = baton_hubspot::outbox::OutboxTransport::open(dir.clone(), &cfg.base_url).unwrap();
    let d = Deliverer::new(
        cfg,
        Some(HubspotClient::outbox(outbox)),
        Arc::new(store.clone()),
        objects.clone(),
    );
    assert!(matches!(
        d.deliver(&record, soon(5)).await.unwrap(),
        Delivered::Done(_)
    ));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "000001-get-crm-objects-2026-09-contacts--2B16505551234.json",
            "000002-post-crm-objects-2026-09-contacts-search.json",
            "000003-post-crm-objects-2026-09-contacts.json",
            "000004-post-crm-objects-2026-09-tickets.json",
            "000005-post-files-2026-09-files.json",
            "000006-post-crm-objects-2026-09-notes.json",
        ]
    );
    let ticket: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(&names[3])).unwrap()).unwrap();
    assert_eq!(
        ticket["url"],
        "https://api.hubapi.com/crm/objects/2026-09/tickets"
    );
    assert_eq!(ticket["body"]["properties"]["baton_handoff_id"], record.id);
    assert_eq!(
        ticket["body"]["associations"][0]["types"][0]["associationTypeId"],
        16
    );
    let note: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(&names[5])).unwrap()).unwrap();
    assert_eq!(note["body"]["properties"]["hs_attachment_ids"], "outbox-5");
    assert!(!ticket.to_string().contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_plays_a_conversation_end_to_end_and_shows_the_ticket_and_note() {
    let dir = std::env::temp_dir().join(unique("baton-demo"));
    let cfg = baton_local::LocalConfig::from_source(&[("BATON_DATA_DIR", dir.to_str().unwrap())])
        .unwrap();
    let mut last = String::new();
    for run in 0..2 {
        let text = baton_local::demo::run(&cfg).await.unwrap();
        last = text.clone();
        for want in [
            "HubSpot: done (contact outbox-",
            "Follow-up (the customer wrote again): done on ticket outbox-",
            "subject: WhatsApp: Demo Customer — ",
            "I want to talk to a human, please.",
            "AI agent: I'm sorry to hear that!",
            "baton_sentiment: negative",
            "hs_note_body: <p><strong>WhatsApp handoff</strong>",
            "hs_note_body: <p><strong>WhatsApp follow-up</strong> from Demo Customer",
            "The box was already open when it came.",
            "baton_session_url: http://127.0.0.1:3000/sessions/ho_",
            "Session page (the note's link; open it while `baton-local` serves): http://127.0.0.1:3000/sessions/ho_",
        ] {
            assert!(
                text.contains(want),
                "run {run}: {want:?} missing from\n{text}"
            );
        }
    }
    // Each run is a new customer and a new handoff: two tickets in the outbox.
    let tickets = std::fs::read_dir(cfg.outbox_dir())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with("-post-crm-objects-2026-09-tickets.json")
        })
        .count();
    assert_eq!(tickets, 2);
    // The printed link opens the page `baton-local` serves from the same data directory.
    let link = last
        .lines()
        .find_map(|l| l.split("serves): ").nth(1))
        .unwrap()
        .trim()
        .trim_start_matches("http://127.0.0.1:3000")
        .to_owned();
    let stores = cfg.open_store().await.unwrap();
    let app = cfg.webhook(&stores).await.unwrap();
    let req = http::Request::builder()
        .uri(&link)
        .body(Bytes::new())
        .unwrap();
    let page = app.handle(req).await;
    assert_eq!(page.status(), 200, "{link}");
    let html = String::from_utf8_lossy(page.body());
    assert!(
        html.contains("WhatsApp session with Demo Customer"),
        "{html}"
    );
    assert!(html.contains("I want to talk to a human, please."));
    assert!(
        html.contains("Tool call: "),
        "the agent's tool call, folded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portals_required_properties_are_named_filled_from_the_defaults_or_the_ticket_goes_without_the_contact()
 {
    let server = HubspotServer::start(Options {
        search_lag: Duration::ZERO,
        ..Options::default()
    })
    .await;
    server.require_on_create("contacts", "lead_source");
    server.require_on_create("tickets", "support_channel");
    let (store, objects) = local_stores();
    let record = stored_handoff(
        &store,
        &*objects,
        customer("34612345678", "Ana Ruiz"),
        1,
        "WhatsApp conversation\n",
        &[],
    )
    .await;

    // No defaults: the contact cannot be made, so the ticket goes on without it; the ticket
    // cannot be made either, so the handoff is parked, naming the property and the setting.
    let d = deliverer_on(&server, &store, &objects, &[]);
    let Delivered::Parked(trail) = d.deliver(&record, soon(20)).await.unwrap() else {
        panic!("a ticket the portal refuses is parked")
    };
    let e = trail.last_error.as_ref().unwrap();
    assert_eq!((e.step.as_str(), e.status), ("ticket", Some(400)));
    assert!(
        e.message
            .contains("the portal requires support_channel on a new ticket: give it a value in HUBSPOT_TICKET_DEFAULTS"),
        "{}",
        e.message
    );
    assert_eq!(trail.contact.state, StepState::Skipped);
    let why = trail.contact.how.clone().unwrap();
    assert!(
        why.contains("lead_source") && why.contains("HUBSPOT_CONTACT_DEFAULTS"),
        "{why}"
    );
    assert!(server.contacts().is_empty() && server.tickets().is_empty());

    // The ticket's default given: the replay makes the ticket, without a contact, and its note
    // says why.
    let d = deliverer_on(
        &server,
        &store,
        &objects,
        &[(
            "HUBSPOT_TICKET_DEFAULTS",
            r#"{"support_channel":"WhatsApp"}"#,
        )],
    );
    let Delivered::Done(trail) = d.deliver(&record, soon(20)).await.unwrap() else {
        panic!("delivered without the contact")
    };
    let ticket = &server.tickets()[0];
    assert_eq!(ticket.properties["support_channel"], "WhatsApp");
    assert!(
        server
            .associated("tickets", &ticket.id, "contacts")
            .is_empty()
    );
    assert!(trail.contact.id.is_none());
    let note = &server.notes()[0].properties["hs_note_body"];
    assert!(
        note.contains(
            "<strong>No contact linked</strong>: contact: HubSpot refused the request (400)"
        ) && note.contains("lead_source"),
        "{note}"
    );
    assert!(server.contacts().is_empty());

    // Both defaults: the next customer's handoff has its contact, made with the default.
    let record = stored_handoff(
        &store,
        &*objects,
        customer("4915123456789", "Jonas Weber"),
        1,
        "WhatsApp conversation\n",
        &[],
    )
    .await;
    let d = deliverer_on(
        &server,
        &store,
        &objects,
        &[
            (
                "HUBSPOT_TICKET_DEFAULTS",
                r#"{"support_channel":"WhatsApp"}"#,
            ),
            ("HUBSPOT_CONTACT_DEFAULTS", r#"{"lead_source":"WhatsApp"}"#),
        ],
    );
    let Delivered::Done(trail) = d.deliver(&record, soon(20)).await.unwrap() else {
        panic!("delivered")
    };
    let contact = &server.contacts()[0];
    assert_eq!(contact.properties["lead_source"], "WhatsApp");
    assert_eq!(trail.contact.id.as_deref(), Some(contact.id.as_str()));
    let ticket = server
        .tickets()
        .into_iter()
        .find(|t| t.properties["baton_handoff_id"] == record.id)
        .unwrap();
    assert_eq!(
        server.associated("tickets", &ticket.id, "contacts").len(),
        1
    );
    let note = &server.notes()[1].properties["hs_note_body"];
    assert!(!note.contains("No contact linked"), "{note}");
}

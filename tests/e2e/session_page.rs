//! The session page end to end: a conversation with every kind of message arrives as signed
//! webhooks and agent events (DynamoDB Local, its stream, media copied into s3s-fs), the HubSpot
//! stage writes the note with its signed link, and that link opens the page over HTTP: the whole
//! conversation, escaped, with media URLs presigned per view that download the right bytes from
//! the S3 server; tampered, moved and expired tokens get the same 403. Then headless Chromium
//! renders it on a phone and a desktop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use baton_handoff::HandoffSettings;
use baton_hubspot::{Deliverer, HubspotClient, HubspotConfig};
use baton_shared::domain::*;
use baton_shared::objects::ObjectStore;
use baton_shared::session::SessionLinks;
use baton_shared::store::TrailStore;
use baton_testkit::bodies;
use baton_testkit::hubspot::{HubspotServer, Options, TOKEN};
use baton_webhook::session_page::{self as page, SessionPages};
use serde_json::json;
use tokio::time::Instant;

use crate::browser::{Browser, png_size};
use crate::handoff::{self, CUSTOMER, PNID, T0};
use crate::support::*;
use baton_testkit::graph::Fault;

const SECRET: &str = "session-page-secret";

/// Serves the webhook (with its session pages) on `listener`.
fn serve(listener: tokio::net::TcpListener, app: baton_webhook::Webhook) {
    tokio::spawn(async move {
        axum::serve(listener, app.router()).await.unwrap();
    });
}

/// `href="…"` and `src="…"` values in `html`, unescaped.
fn urls(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["href=\"", "src=\""] {
        for part in html.split(attr).skip(1) {
            let value = &part[..part.find('"').unwrap()];
            out.push(value.replace("&amp;", "&"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_in_the_hubspot_note_opens_the_whole_session_and_its_files() {
    let Some(mut rig) = handoff::rig(HandoffSettings::default(), None).await else {
        return;
    };
    let photo = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/media/photo.png"
    ))
    .unwrap();
    let files: Vec<(&str, &str, &str, Vec<u8>)> = vec![
        ("image.json", "image", "image/png", photo.clone()),
        (
            "audio_voice.json",
            "audio",
            "audio/ogg",
            handoff::pattern(40_000, 2),
        ),
        (
            "video.json",
            "video",
            "video/mp4",
            handoff::pattern(90_000, 3),
        ),
        (
            "document.json",
            "document",
            "application/pdf",
            handoff::pattern(70_000, 4),
        ),
        (
            "sticker_static.json",
            "sticker",
            "image/webp",
            photo.clone(),
        ),
    ];
    let mut messages = vec![
        bodies::text(
            "wamid.s1",
            CUSTOMER,
            T0,
            "My parcel never came <script>alert(1)</script>",
        ),
        bodies::text(
            "wamid.s2",
            CUSTOMER,
            T0 + 5,
            "\"><img src=x onerror=alert(2)> & 'quotes'",
        ),
    ];
    for (i, (fixture, kind, mime, bytes)) in files.iter().enumerate() {
        let id = format!("media-{kind}");
        rig.graph.add(&id, bytes.clone(), mime, Fault::None);
        let mut m = handoff::message(fixture, &format!("wamid.f{i}"), T0 + 10 + i as i64);
        handoff::media(&mut m, kind, &id, bytes, None);
        m[*kind]["mime_type"] = json!(mime);
        messages.push(m);
    }
    for (i, fixture) in [
        "location.json",
        "contacts.json",
        "reaction.json",
        "interactive_list_reply.json",
        "interactive_button_reply.json",
        "button.json",
        "order.json",
        "text_reply_context.json",
        "unsupported.json",
        "system_customer_identity_changed.json",
    ]
    .iter()
    .enumerate()
    {
        messages.push(handoff::message(
            fixture,
            &format!("wamid.o{i}"),
            T0 + 20 + i as i64,
        ));
    }
    rig.deliver_twice(handoff::deliver(messages)).await;
    rig.agent(json!({"events": [
        {"id": "p-1", "type": "reasoning", "phone_number_id": PNID, "customer": CUSTOMER, "timestamp": T0 + 30,
         "text": "Parcel missing; check the carrier. <b>not bold</b>"},
        {"id": "p-2", "type": "tool_call", "phone_number_id": PNID, "customer": CUSTOMER, "timestamp": T0 + 31,
         "tool": {"name": "track_parcel", "input": {"order": "77<x>"}, "output": {"status": "lost"}, "duration_ms": 120}},
        {"id": "p-3", "type": "message", "phone_number_id": PNID, "customer": CUSTOMER, "timestamp": T0 + 32,
         "wamid": "wamid.agent-p3", "text": "The carrier lost it. I'm sorry!"}
    ]}))
    .await;
    // Meta's routing copies: the agent's posted reply echoed again (one line), and a message a
    // person sent from the WhatsApp Business app, shown as such.
    rig.deliver_twice(rig.graph.standby_echo(
        PNID,
        CUSTOMER,
        "wamid.agent-p3",
        T0 + 32,
        "The carrier lost it. I'm sorry!",
    ))
    .await;
    rig.deliver_twice(
        json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
            "field": "smb_message_echoes", "value": {
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": PNID},
                "message_echoes": [{"from": "15550783881", "to": CUSTOMER, "id": "wamid.smb-1",
                    "timestamp": (T0 + 40).to_string(), "type": "text",
                    "text": {"body": "We found your parcel at the depot"}}]}}]}]})
        .to_string()
        .into_bytes(),
    )
    .await;
    rig.deliver_twice(handoff::deliver(vec![bodies::text(
        "wamid.s9",
        CUSTOMER,
        T0 + 60,
        "I want to talk to a human now",
    )]))
    .await;
    rig.run_stream(false).await;
    let handoffs = rig.handoffs().await;
    assert_eq!(handoffs.len(), 1);
    let h = handoffs[0].clone();
    assert_eq!(h.media.len(), files.len(), "{:?}", h.media);
    assert!(h.media.iter().all(|m| m.state == MediaState::Copied));

    // The webhook serves the pages, reading DynamoDB Local and presigning on s3s-fs.
    let store = Arc::new(rig.store.clone());
    let objects: Arc<dyn ObjectStore> = Arc::new(rig.objects.clone());
    let pages = |base: &str| {
        SessionPages::new(
            store.clone(),
            store.clone(),
            objects.clone(),
            SessionLinks::new(base, SECRET.to_owned().into(), 30),
        )
        .with_media_url_ttl(Duration::from_secs(120))
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    serve(listener, webhook(store.clone()).with_sessions(pages(&base)));

    // HubSpot's note links to the page.
    let server = HubspotServer::start(Options::default()).await;
    let vars = [
        ("HUBSPOT_ACCESS_TOKEN", TOKEN.to_owned()),
        ("HUBSPOT_BASE_URL", server.base_url()),
        ("PUBLIC_BASE_URL", base.clone()),
        ("SESSION_LINK_SECRET", SECRET.to_owned()),
    ];
    let cfg = HubspotConfig::from_source(&Vars(vars.to_vec())).unwrap();
    let client = HubspotClient::from_config(&cfg).unwrap();
    let deliverer = Deliverer::new(cfg, client, store.clone(), objects.clone());
    deliverer
        .deliver(&h, Instant::now() + Duration::from_secs(30))
        .await
        .unwrap();
    let note = &server.notes()[0].properties["hs_note_body"];
    let link = urls(note)
        .into_iter()
        .find(|u| u.contains("/sessions/"))
        .unwrap_or_else(|| panic!("no session link in {note}"));
    assert!(link.starts_with(&format!("{base}/sessions/{}?t=", h.id)));

    let http = reqwest::Client::new();
    let res = http.get(&link).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let headers = res.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let csp = headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(
        csp.contains(&s3_endpoint().unwrap()),
        "the S3 origin is allowed: {csp}"
    );
    assert!(!csp.contains("script-src"), "no script is allowed: {csp}");
    let html = res.text().await.unwrap();

    // Customer text is escaped wherever it appears; nothing injected survives as markup.
    assert!(html.contains("My parcel never came &lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt; &amp; &#39;quotes&#39;"));
    assert!(!html.contains("<script"), "no script element at all");
    assert!(!html.contains("<img src=x"), "no injected element");
    assert!(html.contains("&lt;b&gt;not bold&lt;/b&gt;"));
    // Everything the rep needs is on the page, in order.
    let in_order = [
        "Escalation reason",
        "AI summary",
        "Sentiment",
        "Reply window",
        "Download the full transcript",
        "HubSpot",
        "Status: <strong class=\"ok\">done</strong>",
        "My parcel never came",
        "[voice note]",
        "[video]",
        "receipt.pdf",
        "[sticker]",
        "shared a location: Philz Coffee",
        "shared a contact: Barbara J. Johnson",
        "reacted 👍",
        "chose “Priority Mail Express”",
        "tapped “",
        "placed an order (catalog",
        "(replying to",
        "<li class=\"e system\">",
        "Reasoning</summary>",
        "Tool call: track_parcel (120 ms)</summary>",
        "&quot;77&lt;x&gt;&quot;",
        "&quot;lost&quot;",
        "The carrier lost it. I&#39;m sorry!",
        "Business (WhatsApp Business app)",
        "We found your parcel at the depot",
        "I want to talk to a human now",
    ];
    let mut at = 0;
    for want in in_order {
        match html[at..].find(want) {
            Some(i) => at += i + want.len(),
            None => panic!("{want:?} missing or out of order in the page:\n{html}"),
        }
    }
    assert_eq!(
        html.matches("The carrier lost it.").count(),
        1,
        "the agent's reply and Meta's echo of it are one line"
    );
    let trail = rig.store.trail(&h.id).await.unwrap().unwrap();
    assert!(
        html.contains(trail.ticket.id.as_deref().unwrap()),
        "the ticket id"
    );
    assert_eq!(
        html.matches("<img ").count(),
        2,
        "the photo and the sticker"
    );
    assert_eq!(html.matches("<audio ").count(), 1);
    assert_eq!(html.matches("<video ").count(), 1);
    assert_eq!(html.matches("<details>").count(), 2);

    // Every file URL on the page downloads its file's exact bytes from the S3 server.
    let s3 = s3_endpoint().unwrap();
    let mut downloaded: HashMap<String, Vec<u8>> = HashMap::new();
    for url in urls(&html).into_iter().filter(|u| u.starts_with(&s3)) {
        assert!(url.contains("X-Amz-Signature="), "presigned: {url}");
        let res = http.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200, "{url}");
        let key = url[s3.len()..].split('?').next().unwrap().to_owned();
        downloaded.insert(key, res.bytes().await.unwrap().to_vec());
    }
    for (m, (_, _, _, bytes)) in h.media.iter().zip(&files) {
        let key = format!("/{}/{}", rig.objects.bucket(), m.key.as_deref().unwrap());
        assert_eq!(
            downloaded.get(&key).map(Vec::len),
            Some(bytes.len()),
            "{key} downloaded from the page"
        );
        assert_eq!(&downloaded[&key], bytes, "{key}");
    }
    let transcript_key = format!("/{}/{}", rig.objects.bucket(), h.transcript.key);
    let transcript = rig.objects.get(&h.transcript.key).await.unwrap().unwrap();
    assert_eq!(downloaded[&transcript_key], transcript.to_vec());
    // A presigned URL with its signature altered is refused by the S3 server.
    let any = urls(&html)
        .into_iter()
        .find(|u| u.starts_with(&s3))
        .unwrap();
    let forged = any.replace("X-Amz-Signature=", "X-Amz-Signature=0");
    assert!(
        !http
            .get(&forged)
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );

    // Tampered, moved, expired and missing tokens all get the same plain 403.
    let token = link.split("?t=").nth(1).unwrap().to_owned();
    let flipped = {
        let mut t = token.clone();
        let last = if t.ends_with('0') { '1' } else { '0' };
        t.pop();
        t.push(last);
        t
    };
    let links = SessionLinks::new(&base, SECRET.to_owned().into(), 30);
    let now = baton_shared::clock::now_ms() / 1000;
    let expired = links.link(&h.id, now - 31 * 86_400);
    let other_id = HandoffRecord::id_for(&ConversationKey::new(PNID, "19995550000"), 1);
    for bad in [
        format!("{base}/sessions/{}?t={flipped}", h.id),
        format!("{base}/sessions/{other_id}?t={token}"),
        expired,
        format!("{base}/sessions/{}", h.id),
        format!("{base}/sessions/{}?t=", h.id),
        format!("{base}/sessions/{}/other?t={token}", h.id),
        format!("{base}/sessions/{}/file?t={flipped}&key=x", h.id),
    ] {
        let res = http.get(&bad).send().await.unwrap();
        assert_eq!(res.status(), 403, "{bad}");
        assert_eq!(res.text().await.unwrap(), page::FORBIDDEN_HTML, "{bad}");
    }
    // A correctly signed link to a session that is not stored: 404, still saying nothing.
    let res = http.get(links.link(&other_id, now)).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.text().await.unwrap(), page::NOT_FOUND_HTML);
    // Only GET.
    let res = http.post(&link).send().await.unwrap();
    assert_eq!(res.status(), 405);

    // Headless Chromium: the page as a rep sees it on a phone, then on a desktop.
    let Some(browser) = Browser::start(390, 844).await else {
        return;
    };
    browser.goto(&link).await;
    browser.images_settled().await;
    let dom = browser
        .eval(
            "return {
                title: document.title,
                scripts: document.scripts.length,
                images: Array.from(document.images).map(i => ({w: i.naturalWidth, h: i.naturalHeight})),
                audio: document.querySelectorAll('audio[controls]').length,
                video: document.querySelectorAll('video[controls]').length,
                details: document.querySelectorAll('details').length,
                open: document.querySelectorAll('details[open]').length,
                entries: document.querySelectorAll('li.e').length,
                customer: document.querySelectorAll('li.customer').length,
                agent: document.querySelectorAll('li.agent').length,
                injected: document.querySelectorAll('img[onerror], img[src=\"x\"]').length,
                text: document.body.innerText,
                overflow: document.documentElement.scrollWidth - window.innerWidth,
                width: window.innerWidth,
            };",
        )
        .await;
    assert_eq!(dom["title"], "Maria Lopez — WhatsApp session");
    assert_eq!(dom["scripts"], 0);
    assert_eq!(
        dom["injected"], 0,
        "the injected image is text, not an element"
    );
    assert_eq!(
        dom["images"],
        json!([{"w": 96, "h": 64}, {"w": 96, "h": 64}]),
        "both images decoded from their presigned URLs"
    );
    assert_eq!(dom["audio"], 1);
    assert_eq!(dom["video"], 1);
    assert_eq!(dom["details"], 2);
    assert_eq!(dom["open"], 0, "reasoning and tool calls start folded");
    // The agent's reply (its echo is the same line) and the business app's message.
    assert_eq!(dom["agent"], 2);
    assert!(
        dom["customer"].as_u64().unwrap() >= 11,
        "{}",
        dom["customer"]
    );
    let text = dom["text"].as_str().unwrap();
    assert!(text.contains("My parcel never came <script>alert(1)</script>"));
    assert!(text.contains("\"><img src=x onerror=alert(2)> & 'quotes'"));
    assert!(
        dom["overflow"].as_i64().unwrap() <= 0,
        "no sideways scrolling on a phone: {}",
        dom["overflow"]
    );
    let phone = browser.screenshot().await;
    let (w, h_px) = png_size(&phone);
    assert_eq!(
        w,
        dom["width"].as_u64().unwrap() as u32,
        "the phone viewport"
    );
    assert!(h_px >= 600, "{h_px}");
    assert!(
        phone.len() > 20_000,
        "a rendered page, not a blank one: {} bytes",
        phone.len()
    );
    // Folded details open on a click.
    let opened = browser
        .eval(
            "document.querySelector('details summary').click();
             return document.querySelectorAll('details[open]').length;",
        )
        .await;
    assert_eq!(opened, 1);

    assert_eq!(dom["width"], 390, "a phone's viewport");
    if let Ok(dir) = std::env::var("BATON_SCREENSHOTS") {
        // For a person to look at: the conversation on the phone.
        browser
            .eval("window.scrollTo(0, document.querySelector('.timeline').offsetTop - 20);")
            .await;
        let shot = browser.screenshot().await;
        std::fs::write(format!("{dir}/session-phone-conversation.png"), shot).unwrap();
    }
    drop(browser);

    let Some(browser) = Browser::start(1280, 900).await else {
        return;
    };
    browser.goto(&link).await;
    browser.images_settled().await;
    let desktop = browser
        .eval(
            "return {overflow: document.documentElement.scrollWidth - window.innerWidth,
                     main: document.body.getBoundingClientRect().width,
                     width: window.innerWidth};",
        )
        .await;
    assert!(desktop["overflow"].as_i64().unwrap() <= 0);
    assert!(
        desktop["main"].as_f64().unwrap() <= 860.0,
        "a readable column on a wide screen: {desktop}"
    );
    let shot = browser.screenshot().await;
    let (w, _) = png_size(&shot);
    assert_eq!(w, desktop["width"].as_u64().unwrap() as u32);
    assert!(shot.len() > 20_000, "{} bytes", shot.len());
    if let Ok(dir) = std::env::var("BATON_SCREENSHOTS") {
        std::fs::write(format!("{dir}/session-phone.png"), &phone).unwrap();
        std::fs::write(format!("{dir}/session-desktop.png"), &shot).unwrap();
    }
}

/// `baton-local`'s directory store cannot presign: the page links its files through the
/// session's own route, which checks the token and that the file is the session's.
#[tokio::test]
async fn without_presigned_urls_the_page_serves_its_own_files_and_nothing_else() {
    use baton_local::fs_objects::FsObjectStore;
    use baton_local::redb_store::RedbStore;
    use baton_shared::media_keys::object_key;
    use baton_shared::objects::ObjectMeta;
    use baton_shared::store::HandoffStore;
    use baton_testkit::fixtures::{copied_file, handoff_record};

    let dir = std::env::temp_dir().join(unique("baton-session-local"));
    let store = RedbStore::open(&dir).unwrap();
    let objects = Arc::new(FsObjectStore::new(dir.join("objects")));
    let app = webhook(Arc::new(store.clone()));
    let mut image = handoff::message("image.json", "wamid.l1", T0);
    let photo = handoff::pattern(5_000, 9);
    handoff::media(&mut image, "image", "media-l1", &photo, None);
    let (status, _) = call(&app, signed(handoff::deliver(vec![image]))).await;
    assert_eq!(status, 200);
    let conv = ConversationKey::new(PNID, CUSTOMER);
    let key = object_key(&conv, "wamid.l1", "photo.jpg");
    objects
        .put(&key, photo.clone().into(), &ObjectMeta::default())
        .await
        .unwrap();
    let record = copied_file(&conv, "wamid.l1", &key, "photo.jpg", "image/jpeg", 5_000);
    store.save_media(&record).await.unwrap();
    // Another conversation's file, in the same directory and the same store.
    let other = ConversationKey::new(PNID, "447700900123");
    let other_key = object_key(&other, "wamid.z", "secret.pdf");
    objects
        .put(
            &other_key,
            b"not yours".to_vec().into(),
            &ObjectMeta::default(),
        )
        .await
        .unwrap();
    store
        .save_media(&copied_file(
            &other,
            "wamid.z",
            &other_key,
            "secret.pdf",
            "application/pdf",
            9,
        ))
        .await
        .unwrap();
    let transcript = TranscriptRef {
        key: "transcripts/t.txt".into(),
        bytes: 5,
        messages: 1,
        agent_events: 0,
        last_order_key: None,
    };
    objects
        .put(
            &transcript.key,
            b"hello".to_vec().into(),
            &ObjectMeta::default(),
        )
        .await
        .unwrap();
    let customer = Customer {
        wa_id: Some(CUSTOMER.into()),
        profile_name: Some("Maria".into()),
        ..Default::default()
    };
    let h = handoff_record(conv, 1, customer, transcript, vec![record], T0);
    assert!(store.save_handoff(&h).await.unwrap());

    let links = SessionLinks::new("http://local", SECRET.to_owned().into(), 30);
    let pages = SessionPages::new(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        objects.clone(),
        links.clone(),
    );
    let app = webhook(Arc::new(store.clone())).with_sessions(pages);
    let now = baton_shared::clock::now_ms() / 1000;
    let link = links.link(&h.id, now);
    let get = |uri: String| {
        http::Request::builder()
            .uri(uri.trim_start_matches("http://local"))
            .body(bytes::Bytes::new())
            .unwrap()
    };
    // The customer writes again after the handoff: the page shows the window as it is now.
    let later = bodies::text("wamid.l2", CUSTOMER, now - 60, "still there?");
    let (status, _) = call(&app, signed(handoff::deliver(vec![later]))).await;
    assert_eq!(status, 200);
    let page = app.handle(get(link.clone())).await;
    assert_eq!(page.status(), 200);
    let html = String::from_utf8(page.body().to_vec()).unwrap();
    assert!(
        html.contains("<span class=\"ok\">open</span> until"),
        "the window reopened by the later message: {html}"
    );
    assert!(html.contains("still there?"));
    let file_urls: Vec<String> = urls(&html)
        .into_iter()
        .filter(|u| u.contains("/file?"))
        .collect();
    assert_eq!(
        file_urls.len(),
        3,
        "transcript, image (and its link): {file_urls:?}"
    );
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("img-src 'self'"), "{csp}");
    for url in &file_urls {
        let res = app.handle(get(url.clone())).await;
        assert_eq!(res.status(), 200, "{url}");
        let body = res.body().to_vec();
        if url.contains("f=transcript") {
            assert_eq!(body, b"hello");
            assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
        } else {
            assert_eq!(body, photo);
            assert_eq!(res.headers()["content-type"], "image/jpeg");
        }
        assert_eq!(res.headers()["cache-control"], "no-store");
        assert_eq!(
            res.headers()["content-security-policy"],
            "default-src 'none'; sandbox",
            "a file runs nothing on this origin"
        );
    }
    // The route names files, never keys: another conversation's message, a path, or a key
    // finds nothing of this session; a query naming no file (or two) is refused.
    let token = link.split("?t=").nth(1).unwrap();
    let file = |q: &str| format!("/sessions/{}/file?t={token}&{q}", h.id);
    let enc = baton_shared::media_keys::url_component;
    for q in [
        "m=wamid.z".to_owned(),
        format!("m={}", enc("../baton.redb")),
        format!("m={}", enc(&other_key)),
    ] {
        let res = app.handle(get(file(&q))).await;
        assert_eq!(res.status(), 404, "{q}");
        assert_eq!(res.body().as_ref(), page::NOT_FOUND_HTML.as_bytes(), "{q}");
    }
    for q in [
        format!("key={}", enc(&other_key)),
        "f=../baton.redb".to_owned(),
        "m=wamid.l1&f=transcript".to_owned(),
        String::new(),
    ] {
        let res = app.handle(get(file(&q))).await;
        assert_eq!(res.status(), 403, "{q}");
        assert_eq!(res.body().as_ref(), page::FORBIDDEN_HTML.as_bytes(), "{q}");
    }
    let forged = file_urls[0].replace("?t=", "?t=1");
    assert_eq!(app.handle(get(forged)).await.status(), 403);

    // Through API Gateway's HTTP API event, as the webhook Lambda gets it.
    let path = format!("/sessions/{}", h.id);
    for (query, want) in [
        (format!("t={token}"), 200),
        (format!("t={token}0"), 403),
        (String::new(), 403),
    ] {
        let event = baton_testkit::lambda_runtime::http_api_event(
            "GET",
            "/sessions/{id}",
            &path,
            &query,
            json!({"accept": "text/html"}),
            None,
        )
        .to_string();
        let (status, body) = crate::lambda::invoke(&app, &event).await;
        assert_eq!(status, want, "{query}");
        if want == 200 {
            assert!(body.contains("WhatsApp session with Maria"), "{body}");
        } else {
            assert_eq!(body, page::FORBIDDEN_HTML);
        }
    }
}

//! `baton-local doctor` and `baton-local smoke` against the contract-strict HubSpot server, the
//! local Graph API and a running `baton-local` (its webhook served over HTTP, its stages running
//! on its embedded store): the doctor names each failure class; the smoke test passes on a
//! healthy set-up and fails at the step that broke.

use std::sync::Arc;
use std::time::Duration;

use baton_local::doctor::{self, Finding, Report};
use baton_local::{LocalConfig, Stage, smoke};
use baton_testkit::hubspot::{Fault, HubspotServer, Options, TOKEN};

use crate::support::*;
use baton_testkit::graph::{self, GraphServer};

const PNID: &str = "106540352242922";
const VERIFY: &str = "the-verify-token";
const APP: &str = "the-meta-app-secret";

struct Baton {
    url: String,
    hubspot: HubspotServer,
    graph: GraphServer,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Baton {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Baton {
    /// The settings the doctor and the smoke test read (the deployed stack's, here).
    fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("WHATSAPP_APP_SECRET", APP.into()),
            ("WHATSAPP_VERIFY_TOKEN", VERIFY.into()),
            ("WHATSAPP_ACCESS_TOKEN", graph::TOKEN.into()),
            ("WHATSAPP_PHONE_NUMBER_ID", PNID.into()),
            ("GRAPH_API_BASE_URL", self.graph.base_url.clone()),
            ("GRAPH_API_VERSION", graph::VERSION.into()),
            ("HUBSPOT_ACCESS_TOKEN", TOKEN.into()),
            ("HUBSPOT_BASE_URL", self.hubspot.base_url()),
            ("PUBLIC_BASE_URL", self.url.clone()),
        ]
    }
}

/// A `baton-local` with its webhook on a port and its two stages running.
async fn baton() -> Baton {
    let hubspot = HubspotServer::start(Options {
        search_lag: Duration::ZERO,
        ..Options::default()
    })
    .await;
    let graph = GraphServer::start(Duration::from_secs(300)).await;
    graph.add_phone_number(PNID, "+1 555-010-0000", "Baton Test Shop");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let dir = std::env::temp_dir().join(unique("baton-setup"));
    let mut b = Baton {
        url,
        hubspot,
        graph,
        tasks: Vec::new(),
    };
    let mut vars = b.settings();
    vars.push(("BATON_DATA_DIR", dir.to_str().unwrap().to_owned()));
    let cfg = LocalConfig::from_source(&Vars(vars)).unwrap();
    let stores = cfg.open_store().await.unwrap();
    let app = cfg.webhook(&stores).await.unwrap();
    b.tasks.push(tokio::spawn(async move {
        axum::serve(listener, app.router()).await.unwrap();
    }));
    let processor = Arc::new(cfg.processor(stores.handoff.clone()).await.unwrap());
    let deliverer = Arc::new(cfg.deliverer(stores.trails.clone()).await.unwrap());
    for stage in [Stage::Handoff(processor), Stage::Hubspot(deliverer)] {
        let (feed, dir) = (stores.feed.clone(), dir.clone());
        b.tasks
            .push(tokio::spawn(baton_local::run_stage(stage, feed, dir)));
    }
    b
}

fn failed(report: &Report) -> Vec<&Finding> {
    report.0.iter().filter(|f| !f.ok).collect()
}

async fn doctor_with(b: &Baton, change: &[(&'static str, &str)]) -> Report {
    let mut vars = b.settings();
    for (k, v) in change {
        vars.retain(|(name, _)| name != k);
        vars.push((k, (*v).to_owned()));
    }
    doctor::run(&Vars(vars), None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_passes_a_healthy_set_up_and_names_each_failure_with_its_fix() {
    let b = baton().await;
    let healthy = doctor_with(&b, &[]).await;
    println!("{}", healthy.render());
    assert!(healthy.passed(), "{}", healthy.render());
    let text = healthy.render();
    for want in [
        "✓ WHATSAPP_APP_SECRET is set (1 secret(s))",
        "✓ the WhatsApp token reads business number +1 555-010-0000 (Baton Test Shop)",
        "✓ the HubSpot token is valid and has Baton's 6 scopes",
        "✓ tickets go to pipeline 0, stage 1",
        "do not exist yet; the first handoff creates them",
        "/webhook answers Meta's handshake with the verify token",
        "All 7 checks passed.",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    for secret in [APP, VERIFY, TOKEN, graph::TOKEN] {
        assert!(!text.contains(secret), "a secret is printed:\n{text}");
    }

    // A HubSpot token that is not the app's.
    let r = doctor_with(&b, &[("HUBSPOT_ACCESS_TOKEN", "pat-na1-revoked")]).await;
    let f = failed(&r);
    assert_eq!(f.len(), 1, "{}", r.render());
    assert!(
        f[0].what
            .contains("HubSpot refused HUBSPOT_ACCESS_TOKEN (HTTP 401)")
    );
    assert!(f[0].fix.contains("copy the private app's access token"));
    assert!(!r.render().contains("pat-na1-revoked"));

    // A missing scope is named, with what it is for.
    b.hubspot.remove_scope("files");
    let r = doctor_with(&b, &[]).await;
    let f = failed(&r);
    assert_eq!(f.len(), 1, "{}", r.render());
    assert_eq!(
        f[0].what,
        "the HubSpot token lacks scopes: files (uploading the customer's files)"
    );
    assert!(f[0].fix.contains("Scopes tab"));
    b.hubspot.restore_scopes();
    // Without a schema scope the missing properties cannot be created either: both are named.
    b.hubspot.remove_scope("crm.schemas.tickets.write");
    let r = doctor_with(&b, &[]).await;
    let f = failed(&r);
    assert_eq!(f.len(), 2, "{}", r.render());
    assert!(
        f[0].what
            .contains("lacks scopes: crm.schemas.tickets.write"),
        "{}",
        f[0].what
    );
    assert!(
        f[1].what.contains("tickets.baton_handoff_id") && f[1].what.contains("cannot be created"),
        "{}",
        f[1].what
    );
    b.hubspot.restore_scopes();

    // A pipeline the portal does not have: the valid ids are listed.
    let r = doctor_with(&b, &[("HUBSPOT_TICKET_PIPELINE", "777")]).await;
    let f = failed(&r);
    assert_eq!(f.len(), 1, "{}", r.render());
    assert!(
        f[0].what.contains("\"777\" is not a ticket pipeline"),
        "{}",
        f[0].what
    );
    assert!(f[0].what.contains("0, 9170"), "{}", f[0].what);

    // The verify token the webhook does not know.
    let r = doctor_with(&b, &[("WHATSAPP_VERIFY_TOKEN", "another-token")]).await;
    let f = failed(&r);
    assert_eq!(f.len(), 1, "{}", r.render());
    assert!(
        f[0].what
            .contains("refused the handshake with this verify token (403)")
    );

    // A WhatsApp token Meta refuses, and a number it cannot read.
    let r = doctor_with(&b, &[("WHATSAPP_ACCESS_TOKEN", "EAAG-expired")]).await;
    assert!(failed(&r)[0].what.contains("error 190"), "{}", r.render());
    let r = doctor_with(&b, &[("WHATSAPP_PHONE_NUMBER_ID", "999")]).await;
    assert!(
        failed(&r)[0]
            .what
            .contains("cannot read business number 999"),
        "{}",
        r.render()
    );
    // The template's placeholder is no secret.
    let r = doctor_with(
        &b,
        &[("WHATSAPP_APP_SECRET", "replace-with-your-meta-app-secret")],
    )
    .await;
    assert!(
        failed(&r)[0]
            .what
            .contains("still the template's placeholder"),
        "{}",
        r.render()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smoke_test_follows_a_test_handoff_to_the_ticket_and_names_the_step_that_broke() {
    let b = baton().await;
    let opts = smoke::Options {
        cleanup: true,
        timeout: Duration::from_secs(20),
    };
    let r = smoke::run(&Vars(b.settings()), &opts).await;
    let text = r.render();
    println!("{text}");
    assert!(r.passed(), "{text}");
    for want in [
        "send: 2 signed messages from test customer +1555010",
        "ticket: ",
        "s after the first message",
        "summary and transcript: the ticket names the customer, has the summary and the conversation line by line",
        "contact: ",
        "note: the handoff note has the escalation reason, sentiment and language",
        "session link: the note's link opens the session (200)",
        "cleanup: archived notes ",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    // Cleaned up: the test ticket, its note and the test contact are archived.
    assert!(b.hubspot.tickets().is_empty(), "{:?}", b.hubspot.tickets());
    assert!(b.hubspot.notes().is_empty());
    assert!(b.hubspot.contacts().is_empty());

    // HubSpot drops the ticket's association with the contact: the contact step fails.
    b.hubspot.drop_ticket_associations();
    let r = smoke::run(&Vars(b.settings()), &smoke::Options::default()).await;
    let f = failed(&r);
    assert_eq!(f.len(), 1, "{}", r.render());
    assert!(
        f[0].what
            .starts_with("contact: the ticket has no contact for +1555010"),
        "{}",
        f[0].what
    );

    // HubSpot refuses tickets: the handoff parks and no ticket appears.
    b.hubspot.inject(
        http::Method::POST,
        "/crm/objects/2026-09/tickets",
        Fault::Status(400),
    );
    let r = smoke::run(
        &Vars(b.settings()),
        &smoke::Options {
            cleanup: false,
            timeout: Duration::from_secs(4),
        },
    )
    .await;
    let f = failed(&r);
    assert_eq!(f.len(), 1, "{}", r.render());
    assert!(
        f[0].what.starts_with("ticket: no ticket for handoff ho_"),
        "{}",
        f[0].what
    );
    assert!(f[0].fix.contains("trail"));

    // A webhook that does not know the app secret refuses the test messages.
    let mut wrong = b.settings();
    wrong.retain(|(k, _)| *k != "WHATSAPP_APP_SECRET");
    wrong.push(("WHATSAPP_APP_SECRET", "not-the-app-secret".into()));
    let r = smoke::run(&Vars(wrong), &smoke::Options::default()).await;
    let f = failed(&r);
    assert!(f[0].what.starts_with("send: "), "{}", r.render());
    assert!(f[0].what.contains("HTTP 401"), "{}", f[0].what);
}

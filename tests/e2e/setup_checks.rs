//! `baton-local doctor` and `baton-local smoke` against the contract-strict HubSpot server, the
//! local Graph API and a running `baton-local` (its webhook served over HTTP, its stages running
//! on its embedded store): the doctor names each failure class; the smoke test passes on a
//! healthy set-up and fails at the step that broke.

use std::sync::Arc;
use std::time::Duration;

use baton_local::doctor::{self, Finding, Report};
use baton_local::{LocalConfig, Stage, smoke};
use baton_testkit::hubspot::{Credential, Fault, HubspotServer, Options, TOKEN};

use crate::support::*;
use baton_testkit::graph::{self, GraphServer};

const PNID: &str = "106540352242922";
const VERIFY: &str = "the-verify-token";
const APP: &str = "the-meta-app-secret";
const HUBSPOT_SECRET: &str = "the-hubspot-client-secret";
const WABA: &str = "102290129340398";
/// The AI agent's own Meta app, subscribed to the business account beside Baton's.
const AGENT_APP: (&str, &str) = ("2345678901234567", "Customer Support Bot");

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
            ("HUBSPOT_APP_SECRET", HUBSPOT_SECRET.into()),
            ("WHATSAPP_BUSINESS_ACCOUNT_ID", WABA.into()),
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
    graph.add_waba(WABA, &[AGENT_APP, (graph::APP_ID, "Baton")]);
    graph.set_app_subscriptions(APP, &["messages", "standby", "messaging_handovers"]);
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
    let processor = cfg.processor(stores.handoff.clone()).await.unwrap();
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

/// The doctor with one setting unset.
async fn doctor_without(b: &Baton, unset: &str) -> Report {
    let mut vars = b.settings();
    vars.retain(|(k, _)| *k != unset);
    doctor::run(&Vars(vars), None, doctor::Options::default()).await
}

async fn doctor_with(b: &Baton, change: &[(&'static str, &str)]) -> Report {
    let mut vars = b.settings();
    for (k, v) in change {
        vars.retain(|(name, _)| name != k);
        vars.push((k, (*v).to_owned()));
    }
    let report = doctor::run(&Vars(vars), None, doctor::Options::default()).await;
    println!("doctor with {change:?}:\n{}", report.render());
    report
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
        "✓ Baton receives messages, standby and messaging_handovers (ready for Conversation Routing)",
        "✓ Baton is subscribed to WhatsApp Business Account 102290129340398, beside Customer Support Bot: each app gets the messages",
        "✓ HubSpot credential: the token of Baton's HubSpot app (static auth) (HUBSPOT_CREDENTIAL=app)",
        "✓ the HubSpot token works: portal 62515 (data hosted in eu1)",
        "✓ the HubSpot token reads what Baton reads (3 scopes checked); HubSpot does not list this token's scopes, so crm.objects.contacts.write, files, crm.schemas.contacts.write, crm.schemas.tickets.write are declared, unverified",
        "✓ tickets go to pipeline 0, stage 1",
        "do not exist yet; the first handoff creates them",
        "/webhook answers Meta's handshake with the verify token",
        "/hubspot/events accepts an event signed with HUBSPOT_APP_SECRET (the app's webhook target URL)",
        "All 12 checks passed.",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    for secret in [APP, VERIFY, TOKEN, graph::TOKEN, HUBSPOT_SECRET] {
        assert!(!text.contains(secret), "a secret is printed:\n{text}");
    }
    // The token was proved on the account first; the server refuses any request without the
    // Bearer header, token info included, so every check above carried it.
    assert!(
        b.hubspot
            .requests()
            .iter()
            .any(|(_, p)| p == "/account-info/2026-09/details"),
        "{:?}",
        b.hubspot.requests()
    );

    // A HubSpot token that is not the app's.
    let r = doctor_with(&b, &[("HUBSPOT_ACCESS_TOKEN", "pat-na1-revoked-0000")]).await;
    let f = failed(&r);
    assert_eq!(f.len(), 1, "{}", r.render());
    assert!(
        f[0].what
            .contains("HubSpot refused HUBSPOT_ACCESS_TOKEN (HTTP 401)")
    );
    assert!(f[0].fix.contains("Distribution > Show"), "{}", f[0].fix);
    assert!(!r.render().contains("pat-na1-revoked"));

    // The app's token without a scope its reads prove: named, with what it is for.
    b.hubspot.remove_scope("oauth");
    let r = doctor_with(&b, &[]).await;
    let f = failed(&r);
    assert_eq!(f.len(), 1, "{}", r.render());
    assert_eq!(
        f[0].what,
        "the HubSpot token lacks scopes: oauth (reading the account's details (baton-local doctor))"
    );
    assert!(f[0].fix.contains("baton-local hubspot-app"), "{}", f[0].fix);
    b.hubspot.restore_scopes();

    // A legacy private app: HubSpot's token info lists its scopes, and the doctor says it is
    // living on borrowed time.
    b.hubspot.set_credential(Credential::LegacyPrivateApp);
    let legacy = [("HUBSPOT_CREDENTIAL", "private-app")];
    let r = doctor_with(&b, &legacy).await;
    let text = r.render();
    assert!(r.passed(), "{text}");
    assert!(
        text.contains("! HubSpot credential: a legacy private app's token\n    note: it keeps working until HubSpot retires legacy apps (September 2027)"),
        "{text}"
    );
    assert!(
        text.contains("✓ the HubSpot token has Baton's 7 scopes (HubSpot's token info)"),
        "{text}"
    );
    b.hubspot.remove_scope("files");
    let r = doctor_with(&b, &legacy).await;
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
    let r = doctor_with(&b, &legacy).await;
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

    // A service key: tickets work, and the doctor says what is off without webhooks (and sends
    // no test event, which a service key could not have signed).
    b.hubspot.set_credential(Credential::ServiceKey);
    let r = doctor_with(&b, &[("HUBSPOT_CREDENTIAL", "service-key")]).await;
    let text = r.render();
    assert!(r.passed(), "{text}");
    assert!(text.contains("! HubSpot credential: a service key\n    note: HubSpot credential is a service key: handoffs still become contacts, tickets, notes and files, but replies written in HubSpot"), "{text}");
    assert!(
        text.contains("HubSpot sends a service key no webhooks"),
        "{text}"
    );
    assert!(!text.contains("/hubspot/events"), "{text}");
    b.hubspot.set_credential(Credential::StaticApp);

    // The events URL refuses what HubSpot would sign with another secret; and without one.
    let r = doctor_with(&b, &[("HUBSPOT_APP_SECRET", "not-the-client-secret")]).await;
    let f = failed(&r);
    assert_eq!(f.len(), 1, "{}", r.render());
    assert!(
        f[0].what
            .ends_with("/hubspot/events refused an event signed with HUBSPOT_APP_SECRET (401)"),
        "{}",
        f[0].what
    );
    let r = doctor_without(&b, "HUBSPOT_APP_SECRET").await;
    let f = failed(&r);
    assert_eq!(f.len(), 1, "{}", r.render());
    assert!(f[0].what.starts_with("HUBSPOT_APP_SECRET is not set"));

    // A token pasted into a setting that is not secret is masked wherever it is quoted.
    let r = doctor_with(&b, &[("HUBSPOT_TICKET_PIPELINE", TOKEN)]).await;
    let text = r.render();
    assert!(!r.passed());
    assert!(!text.contains(TOKEN), "{text}");
    assert!(text.contains("pat-…(masked)"), "{text}");

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

    // Baton's Meta app not subscribed to the business account: named, and --fix subscribes it.
    b.graph.add_waba(WABA, &[AGENT_APP]);
    let r = doctor_with(&b, &[]).await;
    let f = failed(&r);
    assert_eq!(f.len(), 1, "{}", r.render());
    assert_eq!(
        f[0].what,
        format!(
            "Baton ({}) is not subscribed to WhatsApp Business Account {WABA}, so Meta sends Baton none of its messages",
            graph::APP_ID
        )
    );
    assert!(f[0].fix.contains("--fix"));
    let r = doctor::run(&Vars(b.settings()), None, doctor::Options { fix: true }).await;
    assert!(r.passed(), "{}", r.render());
    assert_eq!(b.graph.subscribed(WABA), [AGENT_APP.0, graph::APP_ID]);
    // Baton alone on the account: a warning, since the AI agent then hears nothing.
    b.graph.add_waba(WABA, &[(graph::APP_ID, "Baton")]);
    let r = doctor_with(&b, &[]).await;
    assert!(r.passed(), "{}", r.render());
    assert!(
        r.render()
            .contains("! Baton is the only app subscribed to WhatsApp Business Account"),
        "{}",
        r.render()
    );
    // The app's webhook fields: without routing's, a warning; without messages, a failure.
    b.graph.set_app_subscriptions(APP, &["messages"]);
    let r = doctor_with(&b, &[]).await;
    assert!(r.passed(), "{}", r.render());
    assert!(
        r.render().contains("! Baton is not subscribed to standby, messaging_handovers: once your business turns Conversation Routing on"),
        "{}",
        r.render()
    );
    b.graph.set_app_subscriptions(APP, &["standby"]);
    let r = doctor_with(&b, &[]).await;
    assert_eq!(
        failed(&r)[0].what,
        "Baton is not subscribed to the messages webhook field, so Meta sends it no customer messages"
    );
    // Read with the app access token: another app secret cannot read them.
    let r = doctor_with(&b, &[("WHATSAPP_APP_SECRET", "another-app-secret")]).await;
    assert!(
        failed(&r)[0]
            .what
            .starts_with("Baton's webhook fields could not be read: HTTP 400, error 190"),
        "{}",
        r.render()
    );
    b.graph
        .set_app_subscriptions(APP, &["messages", "standby", "messaging_handovers"]);
    // An account the token cannot manage, and none set.
    let r = doctor_with(&b, &[("WHATSAPP_BUSINESS_ACCOUNT_ID", "555")]).await;
    assert!(
        failed(&r)[0].what.contains("the apps subscribed to WhatsApp Business Account 555 could not be read: HTTP 400, error 100"),
        "{}",
        r.render()
    );
    let r = doctor_without(&b, "WHATSAPP_BUSINESS_ACCOUNT_ID").await;
    assert!(
        failed(&r)[0]
            .what
            .starts_with("WHATSAPP_BUSINESS_ACCOUNT_ID is not set"),
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

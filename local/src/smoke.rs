//! `baton-local smoke`: a test handoff against a deployed (or local) Baton. It sends a short,
//! signed conversation from a clearly marked test customer to the webhook, waits for the ticket
//! in HubSpot and checks, step by step, what the rep would see; `--cleanup` archives the ticket,
//! its notes and the test contact afterwards.

use std::time::Duration;

use baton_hubspot::HubspotClient;
use baton_hubspot::api::{self, Object};
use baton_hubspot::client::json_id;
use baton_hubspot::portal::{CONTACT_WHATSAPP_ID, TICKET_HANDOFF_ID};
use baton_hubspot::transport::Call;
use baton_shared::config::{self, APP_SECRET, PUBLIC_BASE_URL, Source};
use baton_shared::domain::{ConversationKey, HandoffRecord};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::doctor::{Finding, PHONE_NUMBER_ID, Report};

/// The test customer's name, so nobody mistakes the ticket for a real one.
pub const TEST_CUSTOMER: &str = "Baton smoke test";

#[derive(Debug, Clone)]
pub struct Options {
    pub cleanup: bool,
    /// How long to wait for the ticket.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            cleanup: false,
            timeout: Duration::from_secs(120),
        }
    }
}

/// HubSpot as the smoke test reads it: Baton's own client (limits, retries) and API module.
struct HubSpot {
    client: HubspotClient,
}

impl HubSpot {
    /// The answer's status and body; a refusal or a failure as its status (0: no answer).
    async fn call(&self, call: Call) -> (u16, Value) {
        let deadline = Instant::now() + Duration::from_secs(30);
        match self.client.call(&call, deadline).await {
            Ok(a) => (a.status, a.body),
            Err(e) => (e.status().unwrap_or(0), json!({"message": e.to_string()})),
        }
    }

    /// The ids of the `to` records associated with the ticket.
    async fn associated(&self, ticket: &str, to: Object) -> Vec<String> {
        let (_, body) = self
            .call(api::ticket_associations("smoke", ticket, to))
            .await;
        body["results"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| json_id(r.get("toObjectId")))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Runs the smoke test; the report says which step failed.
pub async fn run(src: &(dyn Source + Sync), opts: &Options) -> Report {
    let mut report = Report::default();
    let fail = |report: &mut Report, what: String, fix: &str| {
        report.0.push(Finding::fail(what, fix));
    };
    let (Some(base), Some(secret)) = (
        config::optional(src, PUBLIC_BASE_URL),
        config::optional(src, APP_SECRET),
    ) else {
        fail(
            &mut report,
            "PUBLIC_BASE_URL and WHATSAPP_APP_SECRET are needed to send the test conversation"
                .into(),
            "give --stack, or set both (the stack's WebhookUrl without /webhook, and the Meta App Secret)",
        );
        return report;
    };
    let cfg = match crate::doctor::hubspot_config(src) {
        Ok(c) => c,
        Err(e) => {
            fail(&mut report, e, "fix that setting");
            return report;
        }
    };
    let Some(token) = cfg.token.clone() else {
        fail(
            &mut report,
            "HUBSPOT_ACCESS_TOKEN is not set, so the ticket cannot be looked for".into(),
            "set it to the private app's token",
        );
        return report;
    };
    let http = match baton_shared::http::client(
        "the smoke test",
        baton_shared::http::Timeouts::call(Duration::from_secs(20)),
    ) {
        Ok(h) => h,
        Err(e) => {
            fail(&mut report, e.to_string(), "this is a bug: report it");
            return report;
        }
    };
    let hubspot =
        match HubspotClient::http(&cfg.base_url, token, cfg.limits, Duration::from_secs(20)) {
            Ok(client) => HubSpot { client },
            Err(e) => {
                fail(&mut report, e, "this is a bug: report it");
                return report;
            }
        };
    // A fictional number (555-01xx) new each run, so the run makes its own handoff.
    let mut r = [0u8; 4];
    let _ = getrandom::fill(&mut r);
    let customer = format!("1555010{:04}", u32::from_le_bytes(r) % 10_000);
    let pnid = config::optional(src, PHONE_NUMBER_ID).unwrap_or_else(|| "baton-smoke".into());
    let handoff_id =
        HandoffRecord::id_for(&ConversationKey::new(pnid.as_str(), customer.as_str()), 1);
    let first_words = "Smoke test from baton-local: my order 1001 never arrived.";

    // 1. The conversation, signed as Meta signs it.
    let now = baton_shared::clock::now_ms() / 1000;
    let started = Instant::now();
    let webhook = format!("{}/webhook", base.trim_end_matches('/'));
    for (n, (ts, text)) in [
        (now - 20, first_words),
        (now - 10, "I want to talk to a human, please."),
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "0", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550100000", "phone_number_id": pnid},
            "contacts": [{"profile": {"name": TEST_CUSTOMER}, "wa_id": customer}],
            "messages": [{"from": customer, "id": format!("wamid.baton-smoke-{customer}-{n}"), "timestamp": ts.to_string(), "type": "text", "text": {"body": text}}]
        }}]}]})
        .to_string();
        let signature = baton_shared::whatsapp::sign(
            secret.split(',').next().unwrap_or_default().trim(),
            body.as_bytes(),
        );
        let answer = http
            .post(&webhook)
            .header("content-type", "application/json")
            .header(baton_shared::whatsapp::SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await;
        match answer {
            Ok(a) if a.status().is_success() => {}
            Ok(a) => {
                fail(
                    &mut report,
                    format!(
                        "send: {webhook} answered HTTP {} to the signed test message",
                        a.status().as_u16()
                    ),
                    "401: the deployed WHATSAPP_APP_SECRET is not this one (use --stack); 5xx: see the webhook function's logs",
                );
                return report;
            }
            Err(e) => {
                fail(
                    &mut report,
                    format!("send: {webhook} could not be reached: {e}"),
                    "check PUBLIC_BASE_URL (the stack's WebhookUrl)",
                );
                return report;
            }
        }
    }
    report.0.push(Finding::pass(format!(
        "send: 2 signed messages from test customer +{customer} (“{TEST_CUSTOMER}”) accepted by {webhook}"
    )));

    // 2. The ticket, by its unique handoff id.
    let ticket = loop {
        let lookup = api::read_by_unique(
            "smoke",
            Object::Tickets,
            &handoff_id,
            TICKET_HANDOFF_ID,
            &["subject", "content", TICKET_HANDOFF_ID],
        );
        let (status, body) = hubspot.call(lookup).await;
        if status == 200 {
            break Some(body);
        }
        if status == 401 || status == 403 {
            fail(
                &mut report,
                format!("ticket: HubSpot refused the lookup (HTTP {status})"),
                "run baton-local doctor: the token or its scopes",
            );
            return report;
        }
        if started.elapsed() >= opts.timeout {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let Some(ticket) = ticket else {
        fail(
            &mut report,
            format!(
                "ticket: no ticket for handoff {handoff_id} within {} s",
                opts.timeout.as_secs()
            ),
            "look at the handoff's trail (README, Troubleshooting): a parked handoff names HubSpot's refusal",
        );
        return report;
    };
    let ticket_id = ticket["id"].as_str().unwrap_or_default().to_owned();
    report.0.push(Finding::pass(format!(
        "ticket: {ticket_id} appeared {:.1} s after the first message",
        started.elapsed().as_secs_f64()
    )));
    let content = ticket["properties"]["content"].as_str().unwrap_or_default();
    let subject = ticket["properties"]["subject"].as_str().unwrap_or_default();
    report.0.push(
        if subject.contains(TEST_CUSTOMER)
            && content.contains("\nSummary: ")
            && content.contains(&format!("Customer ({TEST_CUSTOMER}): {first_words}"))
        {
            Finding::pass(
                "summary and transcript: the ticket names the customer, has the summary and the conversation line by line",
            )
        } else {
            Finding::fail(
                format!("summary and transcript: subject {subject:?}; the description lacks the summary or the test conversation"),
                "see the handoff's trail and the ticket's description in HubSpot",
            )
        },
    );

    // 3. The contact, associated, found by the test number.
    let contacts = hubspot.associated(&ticket_id, Object::Contacts).await;
    let mut contact_id = None;
    for c in &contacts {
        let (_, body) = hubspot
            .call(api::read(
                "smoke",
                Object::Contacts,
                c,
                &["phone", CONTACT_WHATSAPP_ID],
            ))
            .await;
        let props = &body["properties"];
        let number = format!("+{customer}");
        if [props["phone"].as_str(), props[CONTACT_WHATSAPP_ID].as_str()]
            .contains(&Some(number.as_str()))
        {
            contact_id = Some(c.clone());
        }
    }
    report.0.push(match &contact_id {
        Some(c) => Finding::pass(format!("contact: {c} is associated with the ticket, found by +{customer}")),
        None => Finding::fail(
            format!("contact: the ticket has no contact for +{customer} ({} associated)", contacts.len()),
            "see the trail's contact step; the association type ids are checked at set-up (README, HubSpot)",
        ),
    });

    // 4. The handoff note and its session link.
    let notes = hubspot.associated(&ticket_id, Object::Notes).await;
    let mut note = None;
    if !notes.is_empty() {
        let (_, body) = hubspot
            .call(api::batch_read(
                "smoke",
                Object::Notes,
                &notes,
                &["hs_note_body"],
            ))
            .await;
        note = body["results"].as_array().and_then(|r| {
            r.iter()
                .filter_map(|n| n["properties"]["hs_note_body"].as_str())
                .find(|b| b.contains(&baton_hubspot::content::note_marker(&handoff_id)))
                .map(str::to_owned)
        });
    }
    let Some(note) = note else {
        fail(
            &mut report,
            "note: the ticket has no handoff note".into(),
            "see the trail's note step (a refused note is parked with HubSpot's reason)",
        );
        return finish(
            report,
            &hubspot,
            opts,
            &ticket_id,
            &notes,
            contact_id.as_deref(),
        )
        .await;
    };
    let has = |w: &str| note.contains(w);
    report.0.push(
        if has("Escalation reason") && has("Sentiment") && has("Language") {
            Finding::pass(
                "note: the handoff note has the escalation reason, sentiment and language",
            )
        } else {
            Finding::fail(
                "note: the handoff note lacks the reason, sentiment or language",
                "this is a bug: report it with the note's text",
            )
        },
    );
    let link = note
        .split("href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(|l| l.replace("&amp;", "&"));
    report.0.push(match link {
        None => Finding::fail(
            "session link: the note has none",
            "set PUBLIC_BASE_URL and SESSION_LINK_SECRET for the HubSpot function (template.yaml does)",
        ),
        Some(link) => match http.get(&link).send().await {
            Ok(r) if r.status().as_u16() == 200 => {
                Finding::pass("session link: the note's link opens the session (200)")
            }
            Ok(r) => Finding::fail(
                format!("session link: it answers HTTP {}", r.status().as_u16()),
                "403: the webhook and HubSpot functions sign links with different keys; 404: the webhook has no SESSION_LINK_SECRET or MEDIA_BUCKET",
            ),
            Err(e) => Finding::fail(
                format!("session link: not reachable: {e}"),
                "check PUBLIC_BASE_URL",
            ),
        },
    });
    finish(
        report,
        &hubspot,
        opts,
        &ticket_id,
        &notes,
        contact_id.as_deref(),
    )
    .await
}

/// With `--cleanup`, archives what the test made in HubSpot.
async fn finish(
    mut report: Report,
    hubspot: &HubSpot,
    opts: &Options,
    ticket: &str,
    notes: &[String],
    contact: Option<&str>,
) -> Report {
    if !opts.cleanup {
        return report;
    }
    let mut archived = Vec::new();
    let mut refused = Vec::new();
    let objects = notes
        .iter()
        .map(|n| (Object::Notes, n.as_str()))
        .chain([(Object::Tickets, ticket)])
        .chain(contact.map(|c| (Object::Contacts, c)));
    for (kind, id) in objects {
        let (status, _) = hubspot.call(api::archive("smoke", kind, id)).await;
        let kind = kind.as_str();
        if (200..300).contains(&status) {
            archived.push(format!("{kind} {id}"));
        } else {
            refused.push(format!("{kind} {id} (HTTP {status})"));
        }
    }
    report.0.push(if refused.is_empty() {
        Finding::pass(format!("cleanup: archived {}", archived.join(", ")))
    } else {
        Finding::fail(
            format!("cleanup: could not archive {}", refused.join(", ")),
            "archive them by hand in HubSpot",
        )
    });
    report
}

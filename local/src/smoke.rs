//! `baton-local smoke`: a test handoff against a deployed (or local) Baton. It sends a short,
//! signed conversation from a clearly marked test customer to the webhook, waits for the ticket
//! in HubSpot and checks, step by step, what the rep would see; `--cleanup` archives the ticket,
//! its notes and the test contact afterwards.

use std::sync::Arc;
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
#[derive(Clone)]
struct HubSpot {
    client: Arc<HubspotClient>,
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

/// What one run works with: the test customer, the webhook, and HubSpot.
struct Smoke {
    http: reqwest::Client,
    hubspot: HubSpot,
    webhook: String,
    /// The Meta App Secret the test messages are signed with.
    secret: String,
    customer: String,
    phone_number_id: String,
    handoff_id: String,
    timeout: Duration,
}

/// The first customer message, which the ticket's transcript must quote.
const FIRST_WORDS: &str = "Smoke test from baton-local: my order 1001 never arrived.";

/// Runs the smoke test; the report says which step failed.
pub async fn run(src: &(dyn Source + Sync), opts: &Options) -> Report {
    let mut report = Report::default();
    match smoke_steps(src, opts, &mut report).await {
        Ok(made) => finish(report, opts, made).await,
        Err(failed) => {
            report.0.push(failed);
            report
        }
    }
}

/// The steps in order; each finding goes into `report`, and a failure that ends the run comes
/// back. Once the ticket exists, what the run made in HubSpot comes back for `--cleanup`.
async fn smoke_steps(
    src: &(dyn Source + Sync),
    opts: &Options,
    report: &mut Report,
) -> Result<Made, Finding> {
    let smoke = Smoke::prepare(src, opts)?;
    let started = Instant::now();
    report.0.push(smoke.send().await?);
    let (ticket_id, ticket) = smoke.ticket(started).await?;
    report.0.push(Finding::pass(format!(
        "ticket: {ticket_id} appeared {:.1} s after the first message",
        started.elapsed().as_secs_f64()
    )));
    report.0.push(ticket_text(&ticket));
    let (found, contact) = smoke.contact(&ticket_id).await;
    report.0.push(found);
    // The note follows the ticket (after the files): waited for like the ticket.
    let (notes, note) = loop {
        let notes = smoke.hubspot.associated(&ticket_id, Object::Notes).await;
        let note = smoke.note(&notes).await;
        if note.is_some() || started.elapsed() >= opts.timeout {
            break (notes, note);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let made = Made {
        hubspot: smoke.hubspot.clone(),
        ticket: ticket_id,
        notes,
        contact,
    };
    match note {
        Some(note) => {
            report.0.push(note_fields(&note));
            report.0.push(smoke.session_link(&note).await);
        }
        None => report.0.push(Finding::fail(
            "note: the ticket has no handoff note",
            "see the trail's note step (a refused note is parked with HubSpot's reason)",
        )),
    }
    Ok(made)
}

impl Smoke {
    /// The settings a run needs, and a new test customer.
    fn prepare(src: &(dyn Source + Sync), opts: &Options) -> Result<Self, Finding> {
        let (Some(base), Some(secret)) = (
            config::optional(src, PUBLIC_BASE_URL),
            config::optional(src, APP_SECRET),
        ) else {
            return Err(Finding::fail(
                "PUBLIC_BASE_URL and WHATSAPP_APP_SECRET are needed to send the test conversation",
                "give --stack, or set both (the stack's WebhookUrl without /webhook, and the Meta App Secret)",
            ));
        };
        let cfg =
            crate::doctor::hubspot_config(src).map_err(|e| Finding::fail(e, "fix that setting"))?;
        let Some(token) = cfg.token.clone() else {
            return Err(Finding::fail(
                "HUBSPOT_ACCESS_TOKEN is not set, so the ticket cannot be looked for",
                "set it to the private app's token",
            ));
        };
        let bug = |e: String| Finding::fail(e, "this is a bug: report it");
        let http = baton_shared::http::client(
            "the smoke test",
            baton_shared::http::Timeouts::call(Duration::from_secs(20)),
        )
        .map_err(|e| bug(e.to_string()))?;
        let client = HubspotClient::http(&cfg.base_url, token, cfg.limits, Duration::from_secs(20))
            .map_err(|e| bug(e.to_string()))?;
        // A fictional number (555-01xx) new each run, so the run makes its own handoff.
        let mut r = [0u8; 4];
        let _ = getrandom::fill(&mut r);
        let customer = format!("1555010{:04}", u32::from_le_bytes(r) % 10_000);
        let phone_number_id =
            config::optional(src, PHONE_NUMBER_ID).unwrap_or_else(|| "baton-smoke".into());
        let handoff_id = HandoffRecord::id_for(
            &ConversationKey::new(phone_number_id.as_str(), customer.as_str()),
            1,
        );
        Ok(Self {
            http,
            hubspot: HubSpot {
                client: Arc::new(client),
            },
            webhook: format!("{}/webhook", base.trim_end_matches('/')),
            secret: secret
                .split(',')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned(),
            customer,
            phone_number_id,
            handoff_id,
            timeout: opts.timeout,
        })
    }

    /// 1. The conversation, signed as Meta signs it.
    async fn send(&self) -> Result<Finding, Finding> {
        let now = baton_shared::clock::now_ms() / 1000;
        let (customer, webhook) = (&self.customer, &self.webhook);
        for (n, (ts, text)) in [
            (now - 20, FIRST_WORDS),
            (now - 10, "I want to talk to a human, please."),
        ]
        .into_iter()
        .enumerate()
        {
            let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "0", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550100000", "phone_number_id": self.phone_number_id},
                "contacts": [{"profile": {"name": TEST_CUSTOMER}, "wa_id": customer}],
                "messages": [{"from": customer, "id": format!("wamid.baton-smoke-{customer}-{n}"), "timestamp": ts.to_string(), "type": "text", "text": {"body": text}}]
            }}]}]})
            .to_string();
            let signature = baton_shared::whatsapp::sign(&self.secret, body.as_bytes());
            let answer = self
                .http
                .post(webhook)
                .header("content-type", "application/json")
                .header(baton_shared::whatsapp::SIGNATURE_HEADER, signature)
                .body(body)
                .send()
                .await;
            match answer {
                Ok(a) if a.status().is_success() => {}
                Ok(a) => {
                    return Err(Finding::fail(
                        format!(
                            "send: {webhook} answered HTTP {} to the signed test message",
                            a.status().as_u16()
                        ),
                        "401: the deployed WHATSAPP_APP_SECRET is not this one (use --stack); 5xx: see the webhook function's logs",
                    ));
                }
                Err(e) => {
                    return Err(Finding::fail(
                        format!("send: {webhook} could not be reached: {e}"),
                        "check PUBLIC_BASE_URL (the stack's WebhookUrl)",
                    ));
                }
            }
        }
        Ok(Finding::pass(format!(
            "send: 2 signed messages from test customer +{customer} (“{TEST_CUSTOMER}”) accepted by {webhook}"
        )))
    }

    /// 2. The ticket, by its unique handoff id, waited for until the timeout.
    async fn ticket(&self, started: Instant) -> Result<(String, Value), Finding> {
        loop {
            let lookup = api::read_by_unique(
                "smoke",
                Object::Tickets,
                &self.handoff_id,
                TICKET_HANDOFF_ID,
                &["subject", "content", TICKET_HANDOFF_ID],
            );
            let (status, body) = self.hubspot.call(lookup).await;
            if status == 200 {
                let id = body["id"].as_str().unwrap_or_default().to_owned();
                return Ok((id, body));
            }
            if status == 401 || status == 403 {
                return Err(Finding::fail(
                    format!("ticket: HubSpot refused the lookup (HTTP {status})"),
                    "run baton-local doctor: the token or its scopes",
                ));
            }
            if started.elapsed() >= self.timeout {
                return Err(Finding::fail(
                    format!(
                        "ticket: no ticket for handoff {} within {} s",
                        self.handoff_id,
                        self.timeout.as_secs()
                    ),
                    "look at the handoff's trail (README, Troubleshooting): a parked handoff names HubSpot's refusal",
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// 3. The contact, associated, found by the test number.
    async fn contact(&self, ticket_id: &str) -> (Finding, Option<String>) {
        let customer = &self.customer;
        let contacts = self.hubspot.associated(ticket_id, Object::Contacts).await;
        let mut contact_id = None;
        for c in &contacts {
            let (_, body) = self
                .hubspot
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
        let finding = match &contact_id {
            Some(c) => Finding::pass(format!(
                "contact: {c} is associated with the ticket, found by +{customer}"
            )),
            None => Finding::fail(
                format!(
                    "contact: the ticket has no contact for +{customer} ({} associated)",
                    contacts.len()
                ),
                "see the trail's contact step; the association type ids are checked at set-up (README, HubSpot)",
            ),
        };
        (finding, contact_id)
    }

    /// 4. The handoff note among the ticket's notes, by its marker.
    async fn note(&self, notes: &[String]) -> Option<String> {
        if notes.is_empty() {
            return None;
        }
        let (_, body) = self
            .hubspot
            .call(api::batch_read(
                "smoke",
                Object::Notes,
                notes,
                &["hs_note_body"],
            ))
            .await;
        let marker = baton_hubspot::content::note_marker(&self.handoff_id);
        body["results"].as_array().and_then(|r| {
            r.iter()
                .filter_map(|n| n["properties"]["hs_note_body"].as_str())
                .find(|b| b.contains(&marker))
                .map(str::to_owned)
        })
    }

    /// 5. The note's session link opens the session.
    async fn session_link(&self, note: &str) -> Finding {
        let link = note
            .split("href=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(|l| l.replace("&amp;", "&"));
        match link {
            None => Finding::fail(
                "session link: the note has none",
                "set PUBLIC_BASE_URL and SESSION_LINK_SECRET for the HubSpot function (template.yaml does)",
            ),
            Some(link) => match self.http.get(&link).send().await {
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
        }
    }
}

/// The ticket names the customer and holds the summary and the conversation.
fn ticket_text(ticket: &Value) -> Finding {
    let content = ticket["properties"]["content"].as_str().unwrap_or_default();
    let subject = ticket["properties"]["subject"].as_str().unwrap_or_default();
    if subject.contains(TEST_CUSTOMER)
        && content.contains("\nSummary: ")
        && content.contains(&format!("Customer ({TEST_CUSTOMER}): {FIRST_WORDS}"))
    {
        Finding::pass(
            "summary and transcript: the ticket names the customer, has the summary and the conversation line by line",
        )
    } else {
        Finding::fail(
            format!(
                "summary and transcript: subject {subject:?}; the description lacks the summary or the test conversation"
            ),
            "see the handoff's trail and the ticket's description in HubSpot",
        )
    }
}

/// The handoff note has the reason, sentiment and language.
fn note_fields(note: &str) -> Finding {
    let has = |w: &str| note.contains(w);
    if has("Escalation reason") && has("Sentiment") && has("Language") {
        Finding::pass("note: the handoff note has the escalation reason, sentiment and language")
    } else {
        Finding::fail(
            "note: the handoff note lacks the reason, sentiment or language",
            "this is a bug: report it with the note's text",
        )
    }
}

/// What a run made in HubSpot, for `--cleanup`.
struct Made {
    hubspot: HubSpot,
    ticket: String,
    notes: Vec<String>,
    contact: Option<String>,
}

/// With `--cleanup`, archives what the test made in HubSpot.
async fn finish(mut report: Report, opts: &Options, made: Made) -> Report {
    let Made {
        hubspot,
        ticket,
        notes,
        contact,
    } = made;
    if !opts.cleanup {
        return report;
    }
    let mut archived = Vec::new();
    let mut refused = Vec::new();
    let objects = notes
        .iter()
        .map(|n| (Object::Notes, n.as_str()))
        .chain([(Object::Tickets, ticket.as_str())])
        .chain(contact.as_deref().map(|c| (Object::Contacts, c)));
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

//! One handoff into HubSpot, exactly once: contact → ticket → files → note. Each step's HubSpot id
//! is saved on the handoff's trail as soon as it exists, so a retry resumes at the next step; a
//! create whose outcome is unknown (timeout, 5xx, or a crash before its id was saved) is looked up
//! before it is sent again: the ticket by its unique handoff id, the note by its marker among the
//! ticket's notes, the contact by its unique WhatsApp id, files by HubSpot's duplicate check.

use std::sync::Arc;

use crate::agent_webhook::AgentNotifier;
use crate::graph_send::Sender;
use baton_shared::clock::now_ms;
use baton_shared::domain::TicketLink;
use baton_shared::domain::{HandoffRecord, HubspotTrail, MediaState, Step, StepState, TrailStatus};
use baton_shared::media_keys::safe_name;
use baton_shared::objects::ObjectStore;
use baton_shared::store::{AfterStore, HandoffStore, TrailStore};
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::client::{HubspotClient, json_id};
use crate::config::HubspotConfig;
use crate::contact::{self, Identity};
use crate::content;
use crate::error::HubspotError;
use crate::setup::{self, Portal};
use crate::transport::{Bucket, Call, FileUpload, Payload, Retry};

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    Done(HubspotTrail),
    /// Refused by HubSpot or misconfigured: kept on the trail with the reason, not retried.
    Parked(HubspotTrail),
}

pub struct Deliverer {
    pub(crate) client: Option<HubspotClient>,
    pub(crate) cfg: HubspotConfig,
    pub(crate) store: Arc<dyn AfterStore>,
    pub(crate) objects: Arc<dyn ObjectStore>,
    portal: OnceCell<Portal>,
    /// Sends reps' replies; `None` without a WhatsApp token.
    pub(crate) sender: Option<Sender>,
    /// Tells the AI agent who owns the conversation; `None` without `AGENT_WEBHOOK_URL`.
    pub(crate) agent: Option<AgentNotifier>,
}

pub(crate) fn iso(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

pub(crate) fn short_hash(s: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(s.as_bytes())[..4])
}

/// One file to put into HubSpot Files: a customer's file, or the full transcript.
struct Upload<'a> {
    /// The trail's name for it: the message id, or `transcript`.
    source: &'a str,
    key: &'a str,
    /// The file name in HubSpot.
    name: String,
    content_type: String,
    /// The name the note shows.
    shown: String,
}

impl Deliverer {
    /// `client: None` means no token: every handoff is parked with a configuration error.
    pub fn new(
        cfg: HubspotConfig,
        client: Option<HubspotClient>,
        store: Arc<dyn AfterStore>,
        objects: Arc<dyn ObjectStore>,
    ) -> Self {
        let sender = cfg.graph.token.clone().and_then(|token| {
            Sender::new(&cfg.graph.base_url, &cfg.graph.version, token, cfg.timeout)
                .map_err(|e| tracing::error!(error = %e, "replies cannot be sent"))
                .ok()
        });
        let agent = cfg.agent_webhook.as_ref().and_then(|a| {
            let Some(secret) = a.secret.clone() else {
                tracing::error!("AGENT_WEBHOOK_URL is set but AGENT_EVENTS_SECRET is not: what the AI agent is told is parked until it is");
                return None;
            };
            AgentNotifier::new(&a.url, secret, cfg.timeout)
                .map_err(|e| tracing::error!(error = %e, "the AI agent cannot be told"))
                .ok()
        });
        Self {
            client,
            cfg,
            store,
            objects,
            portal: OnceCell::new(),
            sender,
            agent,
        }
    }

    pub fn client(&self) -> Option<&HubspotClient> {
        self.client.as_ref()
    }

    /// The portal's set-up, read once (the outbox assumes HubSpot's defaults).
    pub async fn portal(&self, deadline: Instant) -> Result<&Portal, HubspotError> {
        let client = self.require_client()?;
        self.portal
            .get_or_try_init(|| async {
                if client.is_outbox() {
                    Ok(Portal::assumed(&self.cfg))
                } else {
                    Portal::discover(client, &self.cfg, deadline).await
                }
            })
            .await
    }

    pub(crate) fn require_client(&self) -> Result<&HubspotClient, HubspotError> {
        self.client.as_ref().ok_or_else(|| {
            HubspotError::config(
                "setup",
                "HUBSPOT_ACCESS_TOKEN is not set: put the private app's token into the stack's secret, then replay the parked handoffs",
            )
        })
    }

    pub(crate) async fn save(
        &self,
        id: &str,
        trail: &mut HubspotTrail,
    ) -> Result<(), HubspotError> {
        trail.updated_at_ms = now_ms();
        self.store.save_trail(id, trail).await?;
        Ok(())
    }

    /// Delivers `record` unless its trail says it is done. Retryable failures come back as
    /// errors (the trail says `retrying`); refusals park the handoff.
    pub async fn deliver(
        &self,
        record: &HandoffRecord,
        deadline: Instant,
    ) -> Result<Delivered, HubspotError> {
        let mut trail = self.store.trail(&record.id).await?.unwrap_or_default();
        if trail.status == TrailStatus::Done {
            return Ok(Delivered::Done(trail));
        }
        trail.runs += 1;
        trail.status = TrailStatus::InProgress;
        self.save(&record.id, &mut trail).await?;
        match self.run(record, &mut trail, deadline).await {
            Ok(()) => {
                trail.status = TrailStatus::Done;
                self.save(&record.id, &mut trail).await?;
                tracing::info!(handoff = %record.id, ticket = trail.ticket.id.as_deref().unwrap_or("-"), "handoff delivered to HubSpot");
                Ok(Delivered::Done(trail))
            }
            Err(e) => {
                (trail.status, trail.last_error) = crate::after::failed(&e);
                if let Err(save) = self.save(&record.id, &mut trail).await {
                    tracing::error!(handoff = %record.id, error = %save, "the trail could not be saved");
                }
                tracing::debug!(handoff = %record.id, error = %e, "HubSpot delivery failed");
                if e.is_retryable() {
                    tracing::warn!(handoff = %record.id, error = %e.log_summary(), "HubSpot delivery will be retried");
                    Err(e)
                } else {
                    tracing::error!(handoff = %record.id, error = %e.log_summary(), "HubSpot delivery parked");
                    Ok(Delivered::Parked(trail))
                }
            }
        }
    }

    async fn run(
        &self,
        record: &HandoffRecord,
        trail: &mut HubspotTrail,
        deadline: Instant,
    ) -> Result<(), HubspotError> {
        let client = self.require_client()?;
        let portal = self.portal(deadline).await?;
        if !trail.contact.is_finished() {
            trail.contact = self.contact(client, record, deadline).await?;
            self.save(&record.id, trail).await?;
        }
        let transcript = match self.objects.get(&record.transcript.key).await {
            Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(None) => format!(
                "[The transcript {} is missing from the media bucket.]",
                record.transcript.key
            ),
            Err(e) => {
                return Err(HubspotError::Storage(format!(
                    "media bucket: cannot read the transcript: {e}"
                )));
            }
        };
        let (ticket_text, cut) = content::ticket_content(record, &transcript);
        if !trail.ticket.is_finished() {
            let (id, how) = self
                .ticket(client, portal, record, trail, ticket_text, deadline)
                .await?;
            trail.ticket = Step::done(id, how, now_ms());
            self.save(&record.id, trail).await?;
        }
        // HubSpot's events name the ticket; this says whose it is (every run: a crash between
        // the ticket and this line must not leave it unlinked).
        if let Some(ticket_id) = &trail.ticket.id {
            self.store
                .link_ticket(&TicketLink {
                    ticket_id: ticket_id.clone(),
                    handoff_id: record.id.clone(),
                    conversation: record.conversation.clone(),
                    episode: record.episode,
                })
                .await?;
        }
        // Files HubSpot refuses (type, size) or whose copy is gone are skipped, with the reason
        // on the trail and in the note: one file must not keep the rep from the handoff.
        let mut uploads = Vec::new();
        for media in &record.media {
            let (MediaState::Copied, Some(key)) = (media.state, &media.key) else {
                continue;
            };
            uploads.push(Upload {
                source: &media.wamid,
                key,
                name: format!(
                    "{}-{}",
                    short_hash(&media.wamid),
                    safe_name(&media.filename, 80)
                ),
                content_type: media
                    .content_type
                    .clone()
                    .unwrap_or_else(|| "application/octet-stream".into()),
                shown: media.filename.clone(),
            });
        }
        if cut {
            let name = content::transcript_file_name(&record.id);
            uploads.push(Upload {
                source: "transcript",
                key: &record.transcript.key,
                name: name.clone(),
                content_type: "text/plain".into(),
                shown: name,
            });
        }
        let mut attached = Vec::new();
        let mut not_attached = Vec::new();
        for u in uploads {
            if !trail.file(u.source).is_some_and(Step::is_finished) {
                let step = match self
                    .upload(client, record, u.key, &u.name, &u.content_type, deadline)
                    .await
                {
                    Ok(id) => Step::done(id, "uploaded", now_ms()),
                    Err(e) if e.skips_file() => {
                        tracing::warn!(handoff = %record.id, error = %e.log_summary(), "a file was not attached; the handoff goes on without it");
                        Step::skipped(&e.to_string(), now_ms())
                    }
                    Err(e) => return Err(e),
                };
                trail.set_file(u.source, step);
                self.save(&record.id, trail).await?;
            }
            match trail.file(u.source) {
                Some(Step {
                    state: StepState::Skipped,
                    how,
                    ..
                }) => not_attached.push((u.shown, how.clone().unwrap_or_default())),
                _ => attached.push(u.shown),
            }
        }
        if !trail.note.is_finished() {
            let ticket_id = trail.ticket.id.clone().unwrap_or_default();
            let mut note_ids = Vec::new();
            for media in &record.media {
                if let Some(id) = trail.file(&media.wamid).and_then(|s| s.id.clone()) {
                    note_ids.push(id);
                }
            }
            if cut && let Some(id) = trail.file("transcript").and_then(|s| s.id.clone()) {
                note_ids.push(id);
            }
            let body = content::note_body(
                record,
                &attached,
                &not_attached,
                self.session_link(record).as_deref(),
            );
            let mut associations = vec![
                json!({"to": {"id": ticket_id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": portal.note_to_ticket}]}),
            ];
            if let Some(contact) = &trail.contact.id {
                associations.push(json!({"to": {"id": contact}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": portal.note_to_contact}]}));
            }
            let mut properties = json!({
                "hs_timestamp": iso(record.created_at_ms),
                "hs_note_body": body,
            });
            if !note_ids.is_empty() {
                properties["hs_attachment_ids"] = json!(note_ids.join(";"));
            }
            let call = Call::post(
                "note",
                "/crm/v3/objects/notes",
                json!({"properties": properties, "associations": associations}),
            )
            .create();
            let marker = content::note_marker(&record.id);
            let lookup = Lookup::Note {
                ticket_id: &ticket_id,
                marker: &marker,
            };
            let (id, how) = create_once(client, &call, lookup, trail.runs > 1, deadline).await?;
            // Saved with the trail's final state by the caller.
            trail.note = Step::done(id, how, now_ms());
        }
        Ok(())
    }

    fn session_link(&self, record: &HandoffRecord) -> Option<String> {
        // Signed at the handoff's time: every run writes the same link.
        self.cfg
            .sessions
            .as_ref()
            .map(|s| s.link(&record.id, record.created_at_ms / 1000))
    }

    async fn contact(
        &self,
        client: &HubspotClient,
        record: &HandoffRecord,
        deadline: Instant,
    ) -> Result<Step, HubspotError> {
        let Some(who) = Identity::of(&record.customer) else {
            return Ok(Step::skipped(
                "WhatsApp gave no number or user id",
                now_ms(),
            ));
        };
        if let Some(id) = contact::by_whatsapp_id(client, &who.whatsapp_id, deadline).await? {
            return Ok(Step::done(id, "found_by_whatsapp_id", now_ms()));
        }
        if let Some(phone) = &who.phone
            && let Some((id, has_whatsapp_id)) = contact::by_phone(client, phone, deadline).await?
        {
            if !has_whatsapp_id {
                contact::remember(client, &id, &who.whatsapp_id, deadline).await;
            }
            return Ok(Step::done(id, "found_by_search", now_ms()));
        }
        let found = contact::create(client, &who, deadline).await?;
        Ok(Step::done(found.id, found.how, now_ms()))
    }

    async fn ticket(
        &self,
        client: &HubspotClient,
        portal: &Portal,
        record: &HandoffRecord,
        trail: &mut HubspotTrail,
        text: String,
        deadline: Instant,
    ) -> Result<(String, &'static str), HubspotError> {
        let lookup = Lookup::Ticket {
            handoff_id: &record.id,
        };
        let i = &record.insights;
        let mut properties = json!({
            "subject": content::subject(record),
            "content": text,
            "hs_pipeline": portal.pipeline,
            "hs_pipeline_stage": portal.stage,
            setup::TICKET_HANDOFF_ID: record.id,
            setup::TICKET_REASON: format!("{}: {}", record.reason.category, record.reason.text).chars().take(1000).collect::<String>(),
            setup::TICKET_SENTIMENT: i.sentiment.label.as_str(),
        });
        if let Some(p) = self
            .cfg
            .priorities
            .priority(record.trigger.kind.as_str(), i.sentiment.label.as_str())
        {
            if portal.priorities.is_empty() || portal.priorities.iter().any(|o| o == p) {
                properties["hs_ticket_priority"] = json!(p);
            } else {
                tracing::warn!(
                    priority = p,
                    "HUBSPOT_PRIORITY_MAP names a priority the portal does not offer; the ticket gets none"
                );
            }
        }
        if portal.chat_source {
            properties["source_type"] = json!("CHAT");
        }
        if let Some(lang) = &i.language {
            properties[setup::TICKET_LANGUAGE] = json!(lang);
        }
        if let Some(at) = record.reply_window_closes_at {
            properties[setup::TICKET_WINDOW] = json!((at * 1000).to_string());
        }
        if let Some(link) = self.session_link(record) {
            properties[setup::TICKET_SESSION] = json!(link);
        }
        let associations: Vec<Value> = trail
            .contact
            .id
            .iter()
            .map(|c| json!({"to": {"id": c}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": portal.ticket_to_contact}]}))
            .collect();
        let call = Call::post(
            "ticket",
            "/crm/v3/objects/tickets",
            json!({"properties": properties, "associations": associations}),
        )
        .create();
        // A later run may follow a create whose answer was lost: look before creating again.
        create_once(client, &call, lookup, trail.runs > 1, deadline).await
    }

    pub(crate) async fn upload(
        &self,
        client: &HubspotClient,
        record: &HandoffRecord,
        key: &str,
        name: &str,
        content_type: &str,
        deadline: Instant,
    ) -> Result<String, HubspotError> {
        let call = Call {
            method: http::Method::POST,
            path: "/files/v3/files".into(),
            payload: Payload::File(FileUpload {
                objects: self.objects.clone(),
                key: key.to_owned(),
                file_name: name.to_owned(),
                content_type: content_type.to_owned(),
                folder_path: format!("{}/{}", self.cfg.files_folder, record.id),
                options: json!({
                    "access": "PRIVATE",
                    "overwrite": false,
                    "duplicateValidationStrategy": "RETURN_EXISTING",
                    "duplicateValidationScope": "EXACT_FOLDER",
                })
                .to_string(),
            }),
            bucket: Bucket::General,
            // RETURN_EXISTING in the same folder makes a repeated upload return the first file.
            retry: Retry::Safe,
            step: "files",
        };
        let answer = client.call(&call, deadline).await?;
        if !answer.is_success() {
            return Err(answer.rejected("files"));
        }
        answer.id().ok_or_else(|| answer.rejected("files"))
    }
}

/// What a replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReplayReport {
    pub done: usize,
    pub parked: usize,
    pub failed: usize,
    /// Each handoff replayed and how it ended (`done`, `parked: …`, `failed: …`).
    pub handoffs: Vec<(String, String)>,
    /// Ticket events (follow-ups, replies, …) run again on their own: done, parked again.
    pub events_done: usize,
    pub events_parked: usize,
    pub events_failed: usize,
}

/// Runs every parked or retrying handoff again, oldest first (`baton-local hubspot-replay`).
pub async fn replay(
    deliverer: &Deliverer,
    handoffs: &dyn HandoffStore,
    trails: &dyn TrailStore,
    deadline: Instant,
) -> ReplayReport {
    let mut report = ReplayReport::default();
    let ids = match trails.unfinished_handoffs(10_000).await {
        Ok(ids) => ids,
        Err(e) => {
            report.failed += 1;
            report.handoffs.push(("*".into(), format!("failed: {e}")));
            return report;
        }
    };
    // The store lists them in no useful order; reps should see the oldest tickets first.
    let mut records = Vec::new();
    for id in ids {
        let missing = match handoffs.handoff(&id).await {
            Ok(Some(record)) => {
                records.push(record);
                continue;
            }
            Ok(None) => "failed: the handoff record is gone".to_owned(),
            Err(e) => format!("failed: {e}"),
        };
        report.failed += 1;
        report.handoffs.push((id, missing));
    }
    records.sort_by_key(|r| r.created_at_ms);
    for record in records {
        let outcome = match deliverer.deliver(&record, deadline).await {
            Ok(Delivered::Done(_)) => {
                report.done += 1;
                // What happened on the ticket meanwhile waited for it.
                match deliverer.settle_events(&record.id, deadline).await {
                    Ok((0, 0)) => "done".to_owned(),
                    Ok((done, parked)) => {
                        format!("done; ticket events: {done} done, {parked} parked")
                    }
                    Err(e) => format!("done; ticket events failed: {}", e.log_summary()),
                }
            }
            Ok(Delivered::Parked(t)) => {
                report.parked += 1;
                format!(
                    "parked: {}",
                    t.last_error.map(|e| e.message).unwrap_or_default()
                )
            }
            Err(e) => {
                report.failed += 1;
                format!("failed: {e}")
            }
        };
        report.handoffs.push((record.id, outcome));
    }
    // Events parked or retrying on their own (a refused note, an agent that was down).
    let events = match handoffs.unfinished_events(10_000).await {
        Ok(events) => events,
        Err(e) => {
            report.events_failed += 1;
            tracing::error!(error = %e, "unfinished ticket events could not be listed");
            return report;
        }
    };
    for (handoff_id, id) in events {
        let outcome = match handoffs.ticket_event(&handoff_id, &id).await {
            Ok(Some((event, _))) => deliverer.ticket_event(&event, deadline).await,
            Ok(None) => continue,
            Err(e) => Err(e.into()),
        };
        match outcome {
            Ok(crate::after::EventDone::Done(_)) => report.events_done += 1,
            Ok(crate::after::EventDone::Parked(_)) => report.events_parked += 1,
            Err(e) => {
                report.events_failed += 1;
                tracing::warn!(handoff = %handoff_id, error = %e.log_summary(), "ticket event replay failed");
            }
        }
    }
    report
}

/// Creates with `call` unless a previous run (`retried`) did already, as `lookup` finds out.
pub(crate) async fn create_once(
    client: &HubspotClient,
    call: &Call,
    lookup: Lookup<'_>,
    retried: bool,
    deadline: Instant,
) -> Result<(String, &'static str), HubspotError> {
    if retried && let Some(id) = lookup.find(client, deadline).await? {
        return Ok((id, "found_on_retry"));
    }
    create_or_find(client, call, lookup, deadline).await
}

/// Creates with `call`; when the outcome is unknown or a unique value is taken, `lookup` says
/// whether the object exists before anything is sent again.
async fn create_or_find(
    client: &HubspotClient,
    call: &Call,
    lookup: Lookup<'_>,
    deadline: Instant,
) -> Result<(String, &'static str), HubspotError> {
    let mut attempt = 0;
    loop {
        match client.call(call, deadline).await {
            Ok(a) if a.is_success() => {
                return a
                    .id()
                    .map(|id| (id, "created"))
                    .ok_or_else(|| a.rejected(call.step));
            }
            Ok(a) if a.status == 409 || contact::is_unique_violation(&a.body) => {
                return match lookup.find(client, deadline).await? {
                    Some(id) => Ok((id, "conflict")),
                    None => Err(a.rejected(call.step)),
                };
            }
            Ok(a) => return Err(a.rejected(call.step)),
            Err(e @ HubspotError::Uncertain { .. }) => {
                if let Some(id) = lookup.find(client, deadline).await? {
                    return Ok((id, "found_after_timeout"));
                }
                attempt += 1;
                if attempt >= client.max_attempts || !client.pause(attempt, deadline).await {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// How an object a create may already have made is found.
#[derive(Clone, Copy)]
pub(crate) enum Lookup<'a> {
    /// By the ticket's unique handoff id.
    Ticket { handoff_id: &'a str },
    /// By the marker in the note's body, among the ticket's notes.
    Note { ticket_id: &'a str, marker: &'a str },
}

impl Lookup<'_> {
    pub(crate) async fn find(
        self,
        client: &HubspotClient,
        deadline: Instant,
    ) -> Result<Option<String>, HubspotError> {
        match self {
            Self::Ticket { handoff_id } => {
                client
                    .find_by_unique(
                        "ticket",
                        "tickets",
                        handoff_id,
                        setup::TICKET_HANDOFF_ID,
                        deadline,
                    )
                    .await
            }
            Self::Note { ticket_id, marker } => {
                find_note(client, ticket_id, marker, deadline).await
            }
        }
    }
}

/// The note a previous run posted on the ticket, found by its marker among the ticket's notes.
async fn find_note(
    client: &HubspotClient,
    ticket_id: &str,
    marker: &str,
    deadline: Instant,
) -> Result<Option<String>, HubspotError> {
    let associated = client
        .results(
            &Call::get(
                "note",
                format!("/crm/v4/objects/tickets/{ticket_id}/associations/notes?limit=500"),
            ),
            deadline,
        )
        .await?;
    let ids: Vec<String> = associated
        .iter()
        .filter_map(|a| json_id(a.get("toObjectId")))
        .collect();
    for chunk in ids.chunks(100) {
        let inputs: Vec<Value> = chunk.iter().map(|id| json!({"id": id})).collect();
        let notes = client
            .results(
                &Call::post(
                    "note",
                    "/crm/v3/objects/notes/batch/read",
                    json!({"properties": ["hs_note_body"], "inputs": inputs}),
                ),
                deadline,
            )
            .await?;
        let found = notes.iter().find(|n| {
            n.pointer("/properties/hs_note_body")
                .and_then(Value::as_str)
                .is_some_and(|b| b.contains(marker))
        });
        if let Some(note) = found {
            return Ok(json_id(note.get("id")));
        }
    }
    Ok(None)
}

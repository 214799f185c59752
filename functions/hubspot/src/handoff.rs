//! One handoff into HubSpot, exactly once: contact → ticket → files → note. Each step's HubSpot id
//! is saved on the handoff's trail as soon as it exists, so a retry resumes at the next step; a
//! create whose outcome is unknown (timeout, 5xx, or a crash before its id was saved) is looked up
//! before it is sent again ([`crate::exactly_once`]); files by HubSpot's duplicate check.

use baton_shared::clock::now_ms;
use baton_shared::domain::{
    HandoffRecord, HubspotTrail, MediaState, Step, StepState, TicketLink, TrailStatus,
};
use baton_shared::retry::Classify as _;
use serde_json::json;
use tokio::time::Instant;

use crate::api::{self, Association, Object, Properties};
use crate::client::HubspotClient;
use crate::contact::{self, Identity};
use crate::content;
use crate::deliverer::{Deliverer, content_type_of, hubspot_file_name};
use crate::error::HubspotError;
use crate::exactly_once::{Lookup, TicketNote, create_once, creating, creating_since, note_once};
use crate::portal::{self, Portal};
use crate::trail::{Delivered, failed};

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

/// The files the note names: attached, and not attached with the reason.
#[derive(Default)]
struct Attached {
    attached: Vec<String>,
    not_attached: Vec<(String, String)>,
}

impl Deliverer {
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
        if trail.thread.is_none() {
            trail.thread = record.thread;
        }
        self.save(&record.id, &mut trail).await?;
        match self.run(record, &mut trail, deadline).await {
            Ok(()) => {
                trail.status = TrailStatus::Done;
                self.save(&record.id, &mut trail).await?;
                tracing::info!(handoff = %record.id, ticket = trail.ticket.id.as_deref().unwrap_or("-"), "handoff delivered to HubSpot");
                Ok(Delivered::Done(trail))
            }
            Err(e) => {
                (trail.status, trail.last_error) = failed(&e);
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

    /// The steps, each skipped when the trail says it is finished.
    async fn run(
        &self,
        record: &HandoffRecord,
        trail: &mut HubspotTrail,
        deadline: Instant,
    ) -> Result<(), HubspotError> {
        let client = self.require_client()?;
        let portal = self.portal(deadline).await?;
        if !trail.contact.is_finished() {
            trail.contact = self.contact_step(client, record, deadline).await?;
            self.save(&record.id, trail).await?;
        }
        let transcript = self.transcript_text(record).await?;
        let (ticket_text, cut) = content::ticket_content(record, &transcript);
        if !trail.ticket.is_finished() {
            let (id, how) = self
                .ticket_step(client, portal, record, trail, ticket_text, deadline)
                .await?;
            trail.ticket = Step::done(id, how, now_ms());
            self.save(&record.id, trail).await?;
        }
        self.link_ticket(record, trail).await?;
        let files = self
            .file_steps(client, record, trail, cut, deadline)
            .await?;
        if !trail.note.is_finished() {
            // Marked before the post: a later run knows HubSpot may still carry it out.
            let in_flight = creating_since(&trail.note);
            trail.note = creating();
            self.save(&record.id, trail).await?;
            // Saved with the trail's final state by the caller.
            trail.note = self
                .note_step(
                    client, portal, record, trail, &files, cut, in_flight, deadline,
                )
                .await?;
        }
        Ok(())
    }

    /// The full transcript the handoff function wrote to the bucket.
    async fn transcript_text(&self, record: &HandoffRecord) -> Result<String, HubspotError> {
        match self.objects.get(&record.transcript.key).await {
            Ok(Some(bytes)) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Ok(None) => Ok(format!(
                "[The transcript {} is missing from the media bucket.]",
                record.transcript.key
            )),
            Err(e) => Err(HubspotError::Storage(format!(
                "media bucket: cannot read the transcript: {e}"
            ))),
        }
    }

    /// The customer's contact: found by their WhatsApp id, else by phone, else created.
    async fn contact_step(
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
        match contact::create(client, &who, &self.cfg.contact_defaults, deadline).await {
            Ok(found) => Ok(Step::done(found.id, found.how, now_ms())),
            // The portal's rules refuse the contact: the ticket is worth more than its link, so
            // it goes ahead without one and the note says why.
            Err(e @ HubspotError::Rejected { .. }) => {
                tracing::warn!(handoff = %record.id, error = %e.log_summary(), "the contact could not be created; the ticket goes ahead without it");
                Ok(Step::skipped(&e.to_string(), now_ms()))
            }
            Err(e) => Err(e),
        }
    }

    /// The ticket, with the contact associated.
    async fn ticket_step(
        &self,
        client: &HubspotClient,
        portal: &Portal,
        record: &HandoffRecord,
        trail: &HubspotTrail,
        text: String,
        deadline: Instant,
    ) -> Result<(String, &'static str), HubspotError> {
        let properties = self.ticket_properties(portal, record, text);
        let associations: Vec<Association> = trail
            .contact
            .id
            .iter()
            .map(|c| Association::new(c, portal.ticket_to_contact))
            .collect();
        let call = api::create("ticket", Object::Tickets, &properties, &associations);
        let lookup = Lookup::Ticket {
            handoff_id: &record.id,
        };
        // A later run may follow a create whose answer was lost: look before creating again.
        create_once(client, &call, lookup, trail.runs > 1, deadline).await
    }

    /// What the rep sees on the ticket: subject, description, pipeline and stage, Baton's
    /// properties, and the priority the map gives.
    fn ticket_properties(
        &self,
        portal: &Portal,
        record: &HandoffRecord,
        text: String,
    ) -> Properties {
        let i = &record.insights;
        // The portal's defaults first: Baton's own values win.
        let mut properties = self.cfg.ticket_defaults.clone();
        let mut set = |name: &str, value: serde_json::Value| {
            properties.insert(name.to_owned(), value);
        };
        set("subject", json!(content::subject(record)));
        set("content", json!(text));
        set("hs_pipeline", json!(portal.pipeline));
        set("hs_pipeline_stage", json!(portal.stage));
        set(portal::TICKET_HANDOFF_ID, json!(record.id));
        set(
            portal::TICKET_REASON,
            json!(
                format!("{}: {}", record.reason.category, record.reason.text)
                    .chars()
                    .take(1000)
                    .collect::<String>()
            ),
        );
        set(portal::TICKET_SENTIMENT, json!(i.sentiment.label.as_str()));
        if let Some(p) = self
            .cfg
            .priorities
            .priority(record.trigger.kind.as_str(), i.sentiment.label.as_str())
        {
            if portal.priorities.is_empty() || portal.priorities.iter().any(|o| o == p) {
                set("hs_ticket_priority", json!(p));
            } else {
                tracing::warn!(
                    priority = p,
                    "HUBSPOT_PRIORITY_MAP names a priority the portal does not offer; the ticket gets none"
                );
            }
        }
        if portal.chat_source {
            set("source_type", json!("CHAT"));
        }
        if let Some(lang) = &i.language {
            set(portal::TICKET_LANGUAGE, json!(lang));
        }
        if let Some(at) = record.reply_window_closes_at {
            set(portal::TICKET_WINDOW, json!((at * 1000).to_string()));
        }
        if let Some(link) = self.session_link(record) {
            set(portal::TICKET_SESSION, json!(link));
        }
        properties
    }

    /// HubSpot's events name the ticket; this says whose it is. Every run: a crash between the
    /// ticket and this line must not leave it unlinked.
    async fn link_ticket(
        &self,
        record: &HandoffRecord,
        trail: &HubspotTrail,
    ) -> Result<(), HubspotError> {
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
        Ok(())
    }

    /// The customer's files and, when the ticket's copy was cut, the full transcript. Files
    /// HubSpot refuses (type, size) or whose copy is gone are skipped, with the reason on the
    /// trail and in the note: one file must not keep the rep from the handoff.
    async fn file_steps(
        &self,
        client: &HubspotClient,
        record: &HandoffRecord,
        trail: &mut HubspotTrail,
        cut: bool,
        deadline: Instant,
    ) -> Result<Attached, HubspotError> {
        let mut uploads = Vec::new();
        for media in &record.media {
            let (MediaState::Copied, Some(key)) = (media.state, &media.key) else {
                continue;
            };
            uploads.push(Upload {
                source: &media.wamid,
                key,
                name: hubspot_file_name(media),
                content_type: content_type_of(media),
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
        let mut files = Attached::default();
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
                }) => files
                    .not_attached
                    .push((u.shown, how.clone().unwrap_or_default())),
                _ => files.attached.push(u.shown),
            }
        }
        Ok(files)
    }

    /// The handoff note, with the files attached and the session link.
    #[allow(clippy::too_many_arguments)]
    async fn note_step(
        &self,
        client: &HubspotClient,
        portal: &Portal,
        record: &HandoffRecord,
        trail: &HubspotTrail,
        files: &Attached,
        cut: bool,
        in_flight_since_ms: Option<i64>,
        deadline: Instant,
    ) -> Result<Step, HubspotError> {
        let ticket_id = trail.ticket.id.clone().unwrap_or_default();
        let mut attachments: Vec<String> = record
            .media
            .iter()
            .filter_map(|m| trail.file(&m.wamid).and_then(|s| s.id.clone()))
            .collect();
        if cut && let Some(id) = trail.file("transcript").and_then(|s| s.id.clone()) {
            attachments.push(id);
        }
        let marker = content::note_marker(&record.id);
        let contact_problem = (trail.contact.state == StepState::Skipped)
            .then(|| trail.contact.how.clone())
            .flatten();
        let body = content::note_body(
            record,
            &files.attached,
            &files.not_attached,
            self.session_link(record).as_deref(),
            contact_problem.as_deref(),
        );
        let note = TicketNote {
            ticket_id: &ticket_id,
            contact_id: trail.contact.id.as_deref(),
            at_ms: record.created_at_ms,
            body: &body,
            attachments: &attachments,
            marker: &marker,
            in_flight_since_ms,
        };
        let (id, how) = note_once(client, portal, &note, trail.runs > 1, deadline).await?;
        Ok(Step::done(id, how, now_ms()))
    }
}

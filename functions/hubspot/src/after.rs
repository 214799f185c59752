//! After the handoff: each [`TicketEvent`] on its ticket, exactly once, step by step like the
//! handoff itself (each step's outcome is saved on the event's trail as soon as it exists):
//!
//! | event | steps |
//! |---|---|
//! | follow-up | `file` (upload the customer's file) → `note` (the message on the ticket) → `window` (the ticket's reply-window deadline) |
//! | reply | `send` (text inside the 24-hour window, the configured template outside it, or nothing and why) → `note` (what became of it) → `clear` (empty the reply field) → `owner` (the agent is told a person answers) |
//! | reply failed | `note` (WhatsApp's error and what to do) |
//! | stage | `close` (a closed or deleted ticket ends the episode) → `owner` (the agent is told it may answer again) |
//! | ownership | `agent` (the signed POST to `AGENT_WEBHOOK_URL`) |
//!
//! A reply is sent at most once: the `send` step is marked before the Graph call, so a crash
//! mid-call leaves a mark that a later run reports on the ticket instead of sending again.

use crate::graph_send::{MAX_TEXT_CHARS, Outgoing, Recipient, SendError};
use baton_shared::clock::now_ms;
use baton_shared::domain::{
    EventTrail, HandoffRecord, MediaState, Owner, ReplyWindow, Step, StepState, TicketEvent,
    TicketEventKind, TimelineEntry, TrailError, TrailStatus,
};
use baton_shared::media_keys::safe_name;
use baton_shared::transcript::{Transcript, utc};
use baton_shared::whatsapp::WaError;
use serde_json::json;
use tokio::time::Instant;

use crate::client::HubspotClient;
use crate::config::TemplateParam;
use crate::content::{self, ReplyOutcome};
use crate::deliver::{Deliverer, Lookup, create_once, iso, short_hash};
use crate::error::HubspotError;
use crate::setup::{self, Portal};
use crate::transport::Call;

/// How an event's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventDone {
    Done(EventTrail),
    /// Refused or misconfigured: kept on the event's trail with the reason.
    Parked(EventTrail),
}

/// The `send` step's mark while the Graph call is under way.
const SENDING: &str = "sending";
/// How a `send` step whose outcome nobody knows starts.
const UNKNOWN: &str = "outcome unknown: ";

/// A template parameter's limit we keep to (Meta refuses long body parameters).
const TEMPLATE_PARAM_CHARS: usize = 1000;

fn waiting(message: &str) -> HubspotError {
    HubspotError::Peer {
        step: "ticket",
        message: message.to_owned(),
        retryable: true,
    }
}

/// What a trail records when a run fails: retrying or parked, and why.
pub(crate) fn failed(e: &HubspotError) -> (TrailStatus, Option<TrailError>) {
    let status = if e.is_retryable() {
        TrailStatus::Retrying
    } else {
        TrailStatus::Parked
    };
    (status, Some(trail_error(e)))
}

/// The failure a trail keeps.
fn trail_error(e: &HubspotError) -> TrailError {
    TrailError {
        step: e.step().to_owned(),
        message: e.to_string(),
        status: e.status(),
        correlation_id: e.correlation_id().map(str::to_owned),
        retryable: e.is_retryable(),
        at_ms: now_ms(),
    }
}

impl Deliverer {
    async fn save_event(
        &self,
        event: &TicketEvent,
        trail: &mut EventTrail,
    ) -> Result<(), HubspotError> {
        trail.updated_at_ms = now_ms();
        self.store
            .save_event_trail(&event.handoff_id, &event.id, trail)
            .await?;
        Ok(())
    }

    /// Works through `event` unless its trail says it is done. Retryable failures come back as
    /// errors (the stream delivers the event again); refusals park it.
    pub async fn ticket_event(
        &self,
        event: &TicketEvent,
        deadline: Instant,
    ) -> Result<EventDone, HubspotError> {
        let mut trail = self
            .store
            .ticket_event(&event.handoff_id, &event.id)
            .await?
            .map(|(_, t)| t)
            .unwrap_or_default();
        if trail.status == TrailStatus::Done {
            return Ok(EventDone::Done(trail));
        }
        trail.runs += 1;
        trail.status = TrailStatus::InProgress;
        self.save_event(event, &mut trail).await?;
        match self.run_event(event, &mut trail, deadline).await {
            Ok(()) => {
                trail.status = TrailStatus::Done;
                trail.last_error = None;
                self.save_event(event, &mut trail).await?;
                tracing::info!(handoff = %event.handoff_id, kind = event.kind.as_str(), "ticket event done");
                Ok(EventDone::Done(trail))
            }
            Err(e) => {
                (trail.status, trail.last_error) = failed(&e);
                if let Err(save) = self.save_event(event, &mut trail).await {
                    tracing::error!(handoff = %event.handoff_id, error = %save, "the event's trail could not be saved");
                }
                if e.is_retryable() {
                    tracing::warn!(handoff = %event.handoff_id, kind = event.kind.as_str(), error = %e.log_summary(), "ticket event will be retried");
                    Err(e)
                } else {
                    tracing::error!(handoff = %event.handoff_id, kind = event.kind.as_str(), error = %e.log_summary(), "ticket event parked");
                    Ok(EventDone::Parked(trail))
                }
            }
        }
    }

    async fn run_event(
        &self,
        event: &TicketEvent,
        trail: &mut EventTrail,
        deadline: Instant,
    ) -> Result<(), HubspotError> {
        let handoff = self
            .store
            .handoff(&event.handoff_id)
            .await?
            .ok_or_else(|| {
                HubspotError::config("ticket", format!("no handoff {}", event.handoff_id))
            })?;
        let handoff_trail = self
            .store
            .trail(&event.handoff_id)
            .await?
            .unwrap_or_default();
        let ticket_id = handoff_trail.ticket.id.clone();
        if let TicketEventKind::Ownership { owner } = &event.kind {
            return self
                .tell_agent(event, &handoff, ticket_id.as_deref(), *owner, trail)
                .await;
        }
        let Some(ticket_id) = ticket_id else {
            return Err(if handoff_trail.status == TrailStatus::Parked {
                HubspotError::config(
                    "ticket",
                    "the handoff's ticket was never created (the handoff is parked): replay it with `baton-local hubspot-replay`, which runs this event too",
                )
            } else {
                waiting("the handoff's ticket is not created yet")
            });
        };
        let ctx = Ctx {
            client: self.require_client()?,
            portal: self.portal(deadline).await?,
            handoff: &handoff,
            ticket_id: &ticket_id,
            contact_id: handoff_trail.contact.id.as_deref(),
            deadline,
        };
        match &event.kind {
            TicketEventKind::FollowUp {
                message,
                media,
                reply_window_closes_at,
            } => {
                self.follow_up(
                    &ctx,
                    event,
                    message,
                    media.as_deref(),
                    *reply_window_closes_at,
                    trail,
                )
                .await
            }
            TicketEventKind::Reply { text, .. } => self.reply(&ctx, event, text, trail).await,
            TicketEventKind::ReplyFailed { reply, errors, .. } => {
                self.reply_failed(&ctx, event, reply, errors, trail).await
            }
            TicketEventKind::Stage { stage, .. } => {
                let closed = stage
                    .as_ref()
                    .is_none_or(|s| ctx.portal.closed_stages.contains(s));
                if !closed {
                    return Ok(());
                }
                self.close(event, &handoff, trail).await
            }
            TicketEventKind::Ownership { .. } => unreachable!("handled above"),
        }
    }

    /// Posts a note on the ticket once: a later run looks for the marker before posting again.
    async fn event_note(
        &self,
        ctx: &Ctx<'_>,
        event: &TicketEvent,
        trail: &mut EventTrail,
        body: String,
        attachment: Option<&str>,
    ) -> Result<(), HubspotError> {
        if trail.is_finished("note") {
            return Ok(());
        }
        // The marker a later run looks for; every event's note ends with it.
        let marker = content::event_marker(&event.handoff_id, &event.id);
        let body = content::marked(body, &marker);
        let mut associations = vec![
            json!({"to": {"id": ctx.ticket_id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": ctx.portal.note_to_ticket}]}),
        ];
        if let Some(contact) = ctx.contact_id {
            associations.push(json!({"to": {"id": contact}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": ctx.portal.note_to_contact}]}));
        }
        let mut properties = json!({
            "hs_timestamp": iso(event.received_at_ms),
            "hs_note_body": body,
        });
        if let Some(id) = attachment {
            properties["hs_attachment_ids"] = json!(id);
        }
        let call = Call::post(
            "note",
            "/crm/v3/objects/notes",
            json!({"properties": properties, "associations": associations}),
        )
        .create();
        let lookup = Lookup::Note {
            ticket_id: ctx.ticket_id,
            marker: &marker,
        };
        let (id, how) =
            create_once(ctx.client, &call, lookup, trail.runs > 1, ctx.deadline).await?;
        trail.set("note", Step::done(id, how, now_ms()));
        self.save_event(event, trail).await
    }

    async fn set_ticket(
        &self,
        ctx: &Ctx<'_>,
        step: &'static str,
        properties: serde_json::Value,
    ) -> Result<(), HubspotError> {
        let call = Call::patch(
            step,
            format!("/crm/v3/objects/tickets/{}", ctx.ticket_id),
            json!({ "properties": properties }),
        );
        let answer = ctx.client.call(&call, ctx.deadline).await?;
        if answer.is_success() {
            Ok(())
        } else {
            Err(answer.rejected(step))
        }
    }

    async fn follow_up(
        &self,
        ctx: &Ctx<'_>,
        event: &TicketEvent,
        message: &baton_shared::domain::MessageRecord,
        media: Option<&baton_shared::domain::MediaRecord>,
        window: Option<i64>,
        trail: &mut EventTrail,
    ) -> Result<(), HubspotError> {
        // The file, as the handoff's files are uploaded.
        if let Some(m) = media
            && !trail.is_finished("file")
        {
            let step = match (m.state, &m.key) {
                (MediaState::Copied, Some(key)) => {
                    let name = format!("{}-{}", short_hash(&m.wamid), safe_name(&m.filename, 80));
                    let content_type = m
                        .content_type
                        .clone()
                        .unwrap_or_else(|| "application/octet-stream".into());
                    match self
                        .upload(
                            ctx.client,
                            ctx.handoff,
                            key,
                            &name,
                            &content_type,
                            ctx.deadline,
                        )
                        .await
                    {
                        Ok(id) => Step::done(id, "uploaded", now_ms()),
                        Err(e) if e.skips_file() => Step::skipped(&e.to_string(), now_ms()),
                        Err(e) => return Err(e),
                    }
                }
                _ => Step::skipped(
                    &format!(
                        "not copied from WhatsApp: {}",
                        m.error.as_deref().unwrap_or("unknown error")
                    ),
                    now_ms(),
                ),
            };
            trail.set("file", step);
            self.save_event(event, trail).await?;
        }
        let file_step = trail.step("file").cloned();
        let file = media.zip(file_step.as_ref()).map(|(m, s)| {
            (
                m.filename.as_str(),
                match s.state {
                    StepState::Done => Ok(()),
                    _ => Err(s.how.as_deref().unwrap_or("not attached")),
                },
            )
        });
        let text = line_of(ctx.handoff, message);
        let body = content::follow_up_note(ctx.handoff, message.timestamp, &text, file, window);
        let attachment = file_step.as_ref().and_then(|s| s.id.clone());
        self.event_note(ctx, event, trail, body, attachment.as_deref())
            .await?;
        // The ticket's deadline moves with the customer's last message.
        if let Some(closes) = window
            && !trail.is_finished("window")
        {
            self.set_ticket(
                ctx,
                "window",
                json!({ setup::TICKET_WINDOW: (closes * 1000).to_string() }),
            )
            .await?;
            trail.set("window", Step::done(utc(closes), "updated", now_ms()));
            self.save_event(event, trail).await?;
        }
        Ok(())
    }

    async fn reply(
        &self,
        ctx: &Ctx<'_>,
        event: &TicketEvent,
        text: &str,
        trail: &mut EventTrail,
    ) -> Result<(), HubspotError> {
        // The customer's window as it stands now, read once: it decides text or template, and
        // the note says why.
        let window = self
            .store
            .conversation(&ctx.handoff.conversation)
            .await?
            .and_then(|c| c.reply_window());
        if !trail.is_finished("send") {
            let step = if trail.step("send").and_then(|s| s.how.as_deref()) == Some(SENDING) {
                Step::skipped(
                    &format!(
                        "{UNKNOWN}Baton stopped while sending this reply, so it may or may not have reached the customer; it was not sent again to avoid a duplicate — check the session page, then send it again if needed"
                    ),
                    now_ms(),
                )
            } else {
                self.send(ctx, event, text, window, trail).await?
            };
            trail.set("send", step);
            self.save_event(event, trail).await?;
        }
        let send = trail.step("send").cloned().unwrap_or_default();
        let how = send.how.clone().unwrap_or_default();
        let outcome = match send.state {
            StepState::Done if how == "text" => ReplyOutcome::Text,
            StepState::Done => ReplyOutcome::Template {
                name: how.strip_prefix("template ").unwrap_or(&how),
                window_closed_at: window.map(|w| w.closes_at()),
            },
            _ => match how.strip_prefix(UNKNOWN) {
                Some(why) => ReplyOutcome::Unknown { why },
                None => ReplyOutcome::NotSent { why: &how },
            },
        };
        let body = content::reply_note(text, outcome);
        self.event_note(ctx, event, trail, body, None).await?;
        if !trail.is_finished("clear") {
            // Emptying the field fires HubSpot's event again, with no value: it sends nothing.
            self.set_ticket(ctx, "clear", json!({ setup::TICKET_REPLY: "" }))
                .await?;
            trail.set("clear", Step::done("", "cleared", now_ms()));
            self.save_event(event, trail).await?;
        }
        if send.state == StepState::Done && !trail.is_finished("owner") {
            self.hand_over(event, Owner::Human).await?;
            trail.set("owner", Step::done(Owner::Human.as_str(), "told", now_ms()));
            self.save_event(event, trail).await?;
        }
        Ok(())
    }

    /// Sends the reply (or decides not to): the step to record.
    async fn send(
        &self,
        ctx: &Ctx<'_>,
        event: &TicketEvent,
        text: &str,
        window: Option<ReplyWindow>,
        trail: &mut EventTrail,
    ) -> Result<Step, HubspotError> {
        let not_sent = |why: String| Ok(Step::skipped(&why, now_ms()));
        let Some(sender) = &self.sender else {
            return not_sent("WHATSAPP_ACCESS_TOKEN is not set, so Baton cannot send on WhatsApp: put the token into the stack's secret".into());
        };
        let customer = &ctx.handoff.customer;
        let to = match (&customer.wa_id, &customer.user_id) {
            (Some(wa), _) => Recipient::Phone(format!("+{}", wa.trim_start_matches('+'))),
            (None, Some(user)) => Recipient::UserId(user.clone()),
            (None, None) => {
                return not_sent("WhatsApp gave no number or user id for this customer".into());
            }
        };
        let now = now_ms() / 1000;
        let (message, how) = if window.is_some_and(|w| w.is_open_at(now)) {
            if text.chars().count() > MAX_TEXT_CHARS {
                return not_sent(format!(
                    "the reply is {} characters long; WhatsApp takes at most {MAX_TEXT_CHARS} in one message — split it",
                    text.chars().count()
                ));
            }
            (Outgoing::Text(text.to_owned()), "text".to_owned())
        } else {
            let closed = match window {
                Some(w) => format!("closed at {}", utc(w.closes_at())),
                None => "never opened (the customer has not written)".to_owned(),
            };
            let Some(template) = &self.cfg.reply_template else {
                return not_sent(format!(
                    "the 24-hour reply window {closed}, so WhatsApp only delivers approved templates, and none is configured (set WHATSAPP_REPLY_TEMPLATE); nothing was sent"
                ));
            };
            let params = template
                .params
                .iter()
                .map(|p| match p {
                    TemplateParam::CustomerName => customer
                        .profile_name
                        .clone()
                        .unwrap_or_else(|| "there".into()),
                    TemplateParam::TicketId => ctx.ticket_id.to_owned(),
                    TemplateParam::HandoffId => ctx.handoff.id.clone(),
                    TemplateParam::Reply => clip(text, TEMPLATE_PARAM_CHARS),
                })
                .collect();
            (
                Outgoing::Template {
                    name: template.name.clone(),
                    language: template.language.clone(),
                    params,
                },
                format!("template {}", template.name),
            )
        };
        // Marked before the call: a crash from here on must not send it twice.
        trail.set(
            "send",
            Step {
                state: StepState::Pending,
                id: None,
                how: Some(SENDING.into()),
                at_ms: Some(now_ms()),
            },
        );
        self.save_event(event, trail).await?;
        match sender
            .send(
                &ctx.handoff.conversation.phone_number_id,
                &to,
                &message,
                &event.callback_data(),
            )
            .await
        {
            Ok(wamid) => {
                tracing::info!(handoff = %event.handoff_id, how = %how, "reply sent on WhatsApp");
                Ok(Step::done(wamid, &how, now_ms()))
            }
            Err(e) if e.is_retryable() => {
                // Not sent: the next run may send it.
                trail.set("send", Step::default());
                self.save_event(event, trail).await?;
                Err(HubspotError::Peer {
                    step: "send",
                    message: e.to_string(),
                    retryable: true,
                })
            }
            Err(e @ SendError::Unknown(_)) => not_sent(format!(
                "{UNKNOWN}{e}; the reply may or may not have reached the customer and was not sent again — check the session page"
            )),
            Err(e) => not_sent(e.to_string()),
        }
    }

    async fn reply_failed(
        &self,
        ctx: &Ctx<'_>,
        event: &TicketEvent,
        reply: &str,
        errors: &[WaError],
        trail: &mut EventTrail,
    ) -> Result<(), HubspotError> {
        let text = match self.store.ticket_event(&event.handoff_id, reply).await? {
            Some((
                TicketEvent {
                    kind: TicketEventKind::Reply { text, .. },
                    ..
                },
                _,
            )) => Some(text),
            _ => None,
        };
        let described: Vec<String> = errors
            .iter()
            .map(|e| {
                let what = e
                    .title
                    .clone()
                    .or_else(|| e.message.clone())
                    .unwrap_or_else(|| "no description".into());
                format!("error {} ({what})", e.code)
            })
            .collect();
        let described = if described.is_empty() {
            "WhatsApp reported the message as failed without a reason".to_owned()
        } else {
            described.join("; ")
        };
        let advice = if errors.iter().any(|e| e.code == 131047) {
            match &self.cfg.reply_template {
                Some(t) => format!("More than 24 hours have passed since the customer last wrote, so only an approved template reaches them. Reply again: Baton sends the template “{}” while the window is closed.", t.name),
                None => "More than 24 hours have passed since the customer last wrote, so only an approved template reaches them, and none is configured: set WHATSAPP_REPLY_TEMPLATE, or wait for the customer to write.".to_owned(),
            }
        } else {
            "The customer did not receive it. Check the error in Meta's documentation, then reply again.".to_owned()
        };
        let body = content::failure_note(text.as_deref(), &described, &advice);
        self.event_note(ctx, event, trail, body, None).await
    }

    /// A closed (or deleted) ticket ends the conversation's episode: the next request for a
    /// person opens a new handoff and a new ticket; the agent is told it may answer again.
    async fn close(
        &self,
        event: &TicketEvent,
        handoff: &HandoffRecord,
        trail: &mut EventTrail,
    ) -> Result<(), HubspotError> {
        if !trail.is_finished("close") {
            let closed = self
                .store
                .close_episode(&handoff.conversation, handoff.episode)
                .await?;
            tracing::info!(handoff = %handoff.id, closed, "the ticket was closed: the handoff's episode ends");
            trail.set(
                "close",
                Step::done(
                    handoff.episode.to_string(),
                    if closed { "closed" } else { "already_closed" },
                    now_ms(),
                ),
            );
            self.save_event(event, trail).await?;
        }
        if !trail.is_finished("owner") {
            self.hand_over(event, Owner::Agent).await?;
            trail.set("owner", Step::done(Owner::Agent.as_str(), "told", now_ms()));
            self.save_event(event, trail).await?;
        }
        Ok(())
    }

    /// Stores the ownership event (once per handoff and owner); its own run tells the agent.
    async fn hand_over(&self, event: &TicketEvent, owner: Owner) -> Result<(), HubspotError> {
        let ownership = TicketEvent {
            handoff_id: event.handoff_id.clone(),
            id: TicketEvent::ownership_id(owner),
            conversation: event.conversation.clone(),
            received_at_ms: now_ms(),
            kind: TicketEventKind::Ownership { owner },
        };
        self.store.save_ticket_event(&ownership).await?;
        Ok(())
    }

    async fn tell_agent(
        &self,
        event: &TicketEvent,
        handoff: &HandoffRecord,
        ticket_id: Option<&str>,
        owner: Owner,
        trail: &mut EventTrail,
    ) -> Result<(), HubspotError> {
        if trail.is_finished("agent") {
            return Ok(());
        }
        let Some(agent) = &self.agent else {
            if self.cfg.agent_webhook.is_some() {
                return Err(HubspotError::config(
                    "agent",
                    "AGENT_WEBHOOK_URL is set but AGENT_EVENTS_SECRET (which signs what the agent is told) is not: set it, then replay",
                ));
            }
            trail.set(
                "agent",
                Step::skipped("AGENT_WEBHOOK_URL is not set", now_ms()),
            );
            return self.save_event(event, trail).await;
        };
        let body = json!({
            "type": "baton.owner_changed",
            "id": format!("{}|{}", event.handoff_id, event.id),
            "owner": owner.as_str(),
            "reason": match owner {
                Owner::Human => "a person replied from the HubSpot ticket; stay quiet in this conversation",
                Owner::Agent => "the HubSpot ticket was closed; you may answer this conversation again",
            },
            "handoff_id": handoff.id,
            "ticket_id": ticket_id,
            "conversation": {
                "phone_number_id": handoff.conversation.phone_number_id,
                "customer": handoff.conversation.customer,
            },
            "at": event.received_at_ms,
        });
        agent
            .notify(body.to_string().into_bytes())
            .await
            .map_err(|e| HubspotError::Peer {
                step: "agent",
                message: e.to_string(),
                retryable: e.retryable,
            })?;
        tracing::info!(handoff = %handoff.id, owner = owner.as_str(), "the AI agent was told who answers");
        trail.set("agent", Step::done(owner.as_str(), "told", now_ms()));
        self.save_event(event, trail).await
    }

    /// Runs every event of `handoff_id` that is not done, in order (after a replayed handoff).
    pub async fn settle_events(
        &self,
        handoff_id: &str,
        deadline: Instant,
    ) -> Result<(usize, usize), HubspotError> {
        let (mut done, mut parked) = (0, 0);
        for (event, trail) in self.store.ticket_events(handoff_id).await? {
            if trail.status == TrailStatus::Done {
                continue;
            }
            match self.ticket_event(&event, deadline).await? {
                EventDone::Done(_) => done += 1,
                EventDone::Parked(_) => parked += 1,
            }
        }
        Ok((done, parked))
    }
}

/// What every step on the ticket needs.
struct Ctx<'a> {
    client: &'a HubspotClient,
    portal: &'a Portal,
    handoff: &'a HandoffRecord,
    ticket_id: &'a str,
    contact_id: Option<&'a str>,
    deadline: Instant,
}

/// The message as the transcript writes it.
fn line_of(handoff: &HandoffRecord, message: &baton_shared::domain::MessageRecord) -> String {
    let mut t = Transcript::new("", &handoff.customer.name()).keeping_lines();
    t.push(&TimelineEntry::Message(message.clone()));
    t.take_lines()
        .iter()
        .map(|l| {
            // The file itself is attached to the note; the line keeps what surrounds it.
            let (before, _, after) = l.parts();
            format!("{before}{after}").trim().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(max - 1).collect();
        s.push('…');
        s
    }
}

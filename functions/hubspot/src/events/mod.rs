//! After the handoff: each [`TicketEvent`] on its ticket, exactly once, step by step like the
//! handoff itself (each step's outcome is saved on the event's trail as soon as it exists). One
//! file per kind of event:
//!
//! | event | file | steps |
//! |---|---|---|
//! | follow-up | [`follow_up`] | `file` (upload the customer's file) → `note` (the message on the ticket) → `window` (the ticket's reply-window deadline) |
//! | reply | [`reply`] | `send` (text inside the 24-hour window, the configured template outside it, or nothing and why) → `note` (what became of it) → `clear` (empty the reply field) → `owner` (the agent is told a person answers) |
//! | reply failed | [`reply_failed`] | `note` (WhatsApp's error and what to do) |
//! | stage | [`close`] | `close` (a closed or deleted ticket ends the episode) → `owner` (the agent is told it may answer again) → `thread` (the thread handed back through Meta's thread control) |
//! | ownership | [`ownership`] | `agent` (the signed POST to `AGENT_WEBHOOK_URL`) |
//! | thread taken | [`thread`] | `note` (another partner took the WhatsApp thread) |
//!
//! A close also hands the WhatsApp thread back when Baton owns it (`thread`, in [`thread`]).

mod close;
mod follow_up;
mod ownership;
mod reply;
mod reply_failed;

pub use reply::MAX_SEND_TRIES;
mod thread;

use baton_shared::clock::now_ms;
use baton_shared::domain::{
    EventTrail, HandoffRecord, Step, ThreadOwner, TicketEvent, TicketEventKind, TrailStatus,
};
use baton_shared::retry::Classify as _;
use tokio::time::Instant;

use crate::api::{self, Object, Properties};
use crate::client::HubspotClient;
use crate::content;
use crate::deliverer::Deliverer;
use crate::error::HubspotError;
use crate::exactly_once::{TicketNote, creating, creating_since, note_once};
use crate::portal::Portal;
use crate::trail::{EventDone, failed};

/// What every step on the ticket needs.
struct Ctx<'a> {
    client: &'a HubspotClient,
    portal: &'a Portal,
    handoff: &'a HandoffRecord,
    ticket_id: &'a str,
    contact_id: Option<&'a str>,
    /// Who owned the WhatsApp thread when this event's run began.
    thread: Option<ThreadOwner>,
    deadline: Instant,
}

/// A wait for something another run makes (the ticket): retried.
fn waiting(message: &str) -> HubspotError {
    HubspotError::Peer {
        step: "ticket",
        message: message.to_owned(),
        retryable: true,
    }
}

impl Deliverer {
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
                if e.is_retryable() && trail.runs >= self.event_retries.attempts {
                    // Retrying without end would hold up this handoff's later events: it parks,
                    // with the reason, for hubspot-replay.
                    trail.status = TrailStatus::Parked;
                    if let Some(error) = trail.last_error.as_mut() {
                        error.message = format!(
                            "{}; still failing after {} runs, so the event is parked: run baton-local hubspot-replay once the cause is fixed",
                            error.message, trail.runs
                        );
                    }
                    if let Err(save) = self.save_event(event, &mut trail).await {
                        tracing::error!(handoff = %event.handoff_id, error = %save, "the event's trail could not be saved");
                    }
                    tracing::error!(handoff = %event.handoff_id, kind = event.kind.as_str(), runs = trail.runs, error = %e.log_summary(), "ticket event parked after its retries");
                    Ok(EventDone::Parked(trail))
                } else if e.is_retryable() {
                    // A jittered pause before the next run, longer each time, inside the deadline:
                    // a peer that is throttling gets room, and only this handoff's events wait.
                    let pause = self.event_retries.delay(trail.runs.saturating_sub(1));
                    if Instant::now() + pause < deadline {
                        tokio::time::sleep(pause).await;
                    }
                    tracing::warn!(handoff = %event.handoff_id, kind = event.kind.as_str(), runs = trail.runs, error = %e.log_summary(), "ticket event will be retried");
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
            thread: handoff_trail.thread,
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
                self.close(&ctx, event, trail).await
            }
            TicketEventKind::FileLanded { media } => {
                self.file_landed(&ctx, event, media, trail).await
            }
            TicketEventKind::ThreadTaken { text, .. } => {
                self.thread_taken(&ctx, event, text, trail).await
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
        let attachments: Vec<String> = attachment.map(str::to_owned).into_iter().collect();
        // Marked before the post: a later run knows HubSpot may still carry it out.
        let in_flight_since_ms = trail.step("note").and_then(creating_since);
        trail.set("note", creating());
        self.save_event(event, trail).await?;
        let note = TicketNote {
            ticket_id: ctx.ticket_id,
            contact_id: ctx.contact_id,
            at_ms: event.received_at_ms,
            body: &body,
            attachments: &attachments,
            marker: &marker,
            in_flight_since_ms,
        };
        let (id, how) =
            note_once(ctx.client, ctx.portal, &note, trail.runs > 1, ctx.deadline).await?;
        trail.set("note", Step::done(id, how, now_ms()));
        self.save_event(event, trail).await
    }

    /// Sets some of the ticket's properties.
    async fn set_ticket(
        &self,
        ctx: &Ctx<'_>,
        step: &'static str,
        properties: Properties,
    ) -> Result<(), HubspotError> {
        let call = api::update(step, Object::Tickets, ctx.ticket_id, &properties);
        let answer = ctx.client.call(&call, ctx.deadline).await?;
        if answer.is_success() {
            Ok(())
        } else {
            Err(answer.rejected(step))
        }
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

/// One property and its value, for [`Deliverer::set_ticket`].
fn one_property(name: &str, value: &str) -> Properties {
    let mut p = Properties::new();
    p.insert(name.to_owned(), serde_json::Value::String(value.to_owned()));
    p
}

//! A customer's message after the handoff: its file uploaded, a note on the ticket, and the
//! ticket's reply-window deadline moved to the new one. A file the handoff or a follow-up went on
//! without follows the same way when its copy lands.

use baton_shared::clock::now_ms;
use baton_shared::domain::{
    EventTrail, HandoffRecord, MediaRecord, MediaState, MessageRecord, Step, StepState,
    TicketEvent, TimelineEntry,
};
use baton_shared::transcript::{Transcript, utc};

use super::{Ctx, one_property};
use crate::content;
use crate::deliverer::{Deliverer, content_type_of, hubspot_file_name};
use crate::error::HubspotError;
use crate::portal;

impl Deliverer {
    pub(super) async fn follow_up(
        &self,
        ctx: &Ctx<'_>,
        event: &TicketEvent,
        message: &MessageRecord,
        media: Option<&MediaRecord>,
        window: Option<i64>,
        trail: &mut EventTrail,
    ) -> Result<(), HubspotError> {
        // The file, as the handoff's files are uploaded.
        if let Some(m) = media
            && !trail.is_finished("file")
        {
            let step = self.follow_up_file(ctx, m).await?;
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
            let value = (closes * 1000).to_string();
            self.set_ticket(ctx, "window", one_property(portal::TICKET_WINDOW, &value))
                .await?;
            trail.set("window", Step::done(utc(closes), "updated", now_ms()));
            self.save_event(event, trail).await?;
        }
        Ok(())
    }

    /// A file that was still being copied when the ticket (or its follow-up) was written: uploaded
    /// now, with a note naming it.
    pub(super) async fn file_landed(
        &self,
        ctx: &Ctx<'_>,
        event: &TicketEvent,
        media: &MediaRecord,
        trail: &mut EventTrail,
    ) -> Result<(), HubspotError> {
        if !trail.is_finished("file") {
            let step = self.follow_up_file(ctx, media).await?;
            trail.set("file", step);
            self.save_event(event, trail).await?;
        }
        let step = trail.step("file").cloned().unwrap_or_default();
        let outcome = match step.state {
            StepState::Done => Ok(()),
            _ => Err(step.how.as_deref().unwrap_or("not attached")),
        };
        let body = content::file_landed_note(ctx.handoff, media, outcome);
        self.event_note(ctx, event, trail, body, step.id.as_deref())
            .await
    }

    /// The follow-up's file in HubSpot Files, or why it is not there.
    async fn follow_up_file(&self, ctx: &Ctx<'_>, m: &MediaRecord) -> Result<Step, HubspotError> {
        let (MediaState::Copied, Some(key)) = (m.state, &m.key) else {
            return Ok(Step::skipped(&content::not_copied(m), now_ms()));
        };
        let name = hubspot_file_name(m);
        match self
            .upload(
                ctx.client,
                ctx.handoff,
                key,
                &name,
                &content_type_of(m),
                ctx.deadline,
            )
            .await
        {
            Ok(id) => Ok(Step::done(id, "uploaded", now_ms())),
            Err(e) if e.skips_file() => Ok(Step::skipped(&e.to_string(), now_ms())),
            Err(e) => Err(e),
        }
    }
}

/// The message as the transcript writes it.
fn line_of(handoff: &HandoffRecord, message: &MessageRecord) -> String {
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
